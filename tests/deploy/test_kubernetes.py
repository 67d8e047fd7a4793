"""deploy/kubernetes: every kustomization, rendered by ``kubectl kustomize``, is valid
Kubernetes (strictly, offline, against the API schemas of a pinned version) and keeps
the promises of the shape: probes on the app's own routes, ports as configured, a drain
longer than readiness needs and shorter than the grace period, rolling deploys and node
drains that keep capacity, locked-down containers, and secrets only by reference."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from entrepot.store.budget import START_UP_PEAK
from tests.deploy import dockerfile, facts
from tests.tools import require

KUBERNETES_VERSION = "1.32.0"  # bundled by kubernetes-validate; the kubectl CI installs
BASE = facts.KUSTOMIZE_DIR / "base"
KUSTOMIZATIONS = [BASE, *sorted((facts.KUSTOMIZE_DIR / "overlays").iterdir())]
IDS = [str(p.relative_to(facts.KUSTOMIZE_DIR)) for p in KUSTOMIZATIONS]
SECRET_NAME = "entrepot"
SUPERUSER_RESERVED = 3  # PostgreSQL's default superuser_reserved_connections

Object = dict[str, Any]


@cache
def render(directory: Path) -> tuple[Object, ...]:
    kubectl = require("kubectl", "kubectl")
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return tuple(o for o in yaml.safe_load_all(done.stdout) if o)


def one(objects: tuple[Object, ...], kind: str) -> Object:
    (found,) = (o for o in objects if o["kind"] == kind)
    return found


def maybe(objects: tuple[Object, ...], kind: str) -> Object | None:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) <= 1, kind
    return found[0] if found else None


def pod_specs(objects: tuple[Object, ...]) -> list[Object]:
    return [o["spec"]["template"]["spec"] for o in objects if o["kind"] in ("Deployment", "Job")]


def config(objects: tuple[Object, ...]) -> dict[str, str]:
    data: dict[str, str] = one(objects, "ConfigMap")["data"]
    return data


def api_container(objects: tuple[Object, ...]) -> Object:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    found: Object = container
    return found


def named_port(container: Object, name: str) -> int:
    (port,) = (p["containerPort"] for p in container["ports"] if p["name"] == name)
    return int(port)


def prestop_seconds(container: Object) -> int:
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert len(command) == 2
    return int(command[1])


@pytest.fixture(params=KUSTOMIZATIONS, ids=IDS)
def objects(request: pytest.FixtureRequest) -> tuple[Object, ...]:
    directory: Path = request.param
    return render(directory)


def test_every_object_is_valid_kubernetes_strictly(objects: tuple[Object, ...]) -> None:
    for obj in objects:
        # Raises ValidationError naming the field; strict: an unknown field is an error.
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_strict_validation_catches_an_unknown_field() -> None:
    deployment = dict(one(render(BASE), "Deployment"))
    deployment["spec"] = dict(deployment["spec"], replica=3)
    with pytest.raises(kubernetes_validate.ValidationError, match="replica"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_probes_are_routes_of_the_app(objects: tuple[Object, ...]) -> None:
    container = api_container(objects)
    routes = facts.get_routes()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in routes, probe
        assert container[probe]["httpGet"]["port"] == "http", probe
        assert container[probe]["timeoutSeconds"] < container[probe]["periodSeconds"] + 1


def test_the_ports_are_the_configured_ones(objects: tuple[Object, ...]) -> None:
    settings = config(objects)
    container = api_container(objects)
    assert named_port(container, "http") == int(settings["ENTREPOT_PORT"])
    assert named_port(container, "metrics") == int(settings["ENTREPOT_METRICS_PORT"])
    assert settings["ENTREPOT_HOST"] == "0.0.0.0"
    assert settings["ENTREPOT_METRICS_HOST"] == "0.0.0.0"
    annotations = one(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == settings["ENTREPOT_METRICS_PORT"]
    assert annotations["prometheus.io/path"] == "/metrics"
    # The metrics listener takes no credentials: the load balancer never exposes it.
    service = one(objects, "Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_one_worker_per_pod(objects: tuple[Object, ...]) -> None:
    """docs/operations.md: probes and metrics see one worker; scale with replicas."""
    assert config(objects)["ENTREPOT_WORKERS"] == "1"


def test_the_drain_outlasts_readiness_and_fits_in_the_grace_period(
    objects: tuple[Object, ...],
) -> None:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    container = api_container(objects)
    readiness = container["readinessProbe"]
    drain = prestop_seconds(container)
    assert drain > readiness["periodSeconds"] * readiness["failureThreshold"]
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > drain + facts.graceful_shutdown_seconds(config(objects))


def test_rolling_deploys_keep_capacity(objects: tuple[Object, ...]) -> None:
    strategy = one(objects, "Deployment")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1


def test_the_disruption_budget_lets_nodes_drain(objects: tuple[Object, ...]) -> None:
    deployment = one(objects, "Deployment")
    replicas = deployment["spec"]["replicas"]
    spec = one(objects, "PodDisruptionBudget")["spec"]
    if "maxUnavailable" in spec:
        assert spec["maxUnavailable"] >= 1
    else:
        assert spec["minAvailable"] < replicas
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()


def test_the_autoscaler_scales_the_deployment(objects: tuple[Object, ...]) -> None:
    hpa = maybe(objects, "HorizontalPodAutoscaler")
    deployment = one(objects, "Deployment")
    if hpa is None:
        return
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"]
    assert hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_production_runs_three_replicas_or_more() -> None:
    objects = render(facts.KUSTOMIZE_DIR / "overlays" / "production")
    assert one(objects, "Deployment")["spec"]["replicas"] >= 3
    assert one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 3
    redis = next(e for e in api_container(objects)["env"] if e["name"] == "ENTREPOT_REDIS_URL")
    assert redis["valueFrom"]["secretKeyRef"]["optional"] is False, "Redis is required"


def test_the_largest_rollout_fits_the_documented_server() -> None:
    """At the autoscaler's maximum plus the rolling deploy's surge, and the migration Job
    beside them, the replicas' connection budget fits the max_connections docs/deploy.md
    gives PostgreSQL (less the 3 slots it reserves for superusers): no replica is
    refused at start, none fails for want of a connection."""
    objects = render(facts.KUSTOMIZE_DIR / "overlays" / "production")
    deployment = one(objects, "Deployment")["spec"]
    replicas = one(objects, "HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    replicas += deployment["strategy"]["rollingUpdate"]["maxSurge"]
    needed = replicas * facts.budget(config(objects)).direct_per_replica + START_UP_PEAK
    assert needed <= facts.documented_max_connections() - SUPERUSER_RESERVED, needed


def test_every_pod_that_reaches_the_store_may_have_the_direct_url(
    objects: tuple[Object, ...],
) -> None:
    """Behind a transaction pooler, serve and migrate need the server's own URL."""
    for pod in pod_specs(objects):
        for container in pod["containers"]:
            names = {e["name"] for e in container.get("env", [])}
            assert {"ENTREPOT_DATABASE_URL", "ENTREPOT_DIRECT_DATABASE_URL"} <= names


def test_dev_runs_one_replica_with_nothing_to_block_it() -> None:
    objects = render(facts.KUSTOMIZE_DIR / "overlays" / "dev")
    assert one(objects, "Deployment")["spec"]["replicas"] == 1
    assert maybe(objects, "HorizontalPodAutoscaler") is None


def test_replicas_spread_over_zones_and_nodes(objects: tuple[Object, ...]) -> None:
    template = one(objects, "Deployment")["spec"]["template"]
    constraints = template["spec"]["topologySpreadConstraints"]
    keys = {c["topologyKey"] for c in constraints}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in constraints:
        selector = constraint["labelSelector"]["matchLabels"]
        assert selector.items() <= template["metadata"]["labels"].items()


def test_the_load_balancer_reaches_the_api_pods(objects: tuple[Object, ...]) -> None:
    service = one(objects, "Service")
    labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["selector"].items() <= labels.items()
    # Per-address limits need the client's address, not a node's.
    assert service["spec"]["externalTrafficPolicy"] == "Local"


def test_every_container_has_requests_and_limits(objects: tuple[Object, ...]) -> None:
    def quantity(value: str) -> float:
        units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
        for suffix, factor in units.items():
            if value.endswith(suffix):
                return float(value.removesuffix(suffix)) * factor
        return float(value)

    for pod in pod_specs(objects):
        for container in pod["containers"]:
            resources = container["resources"]
            for resource in ("cpu", "memory"):
                requested = quantity(resources["requests"][resource])
                assert requested <= quantity(resources["limits"][resource]), container["name"]


def test_every_pod_is_locked_down(objects: tuple[Object, ...]) -> None:
    user = dockerfile.parse(facts.ROOT / "Dockerfile").final.all("USER")[0].text
    uid, _, gid = user.partition(":")
    for pod in pod_specs(objects):
        assert pod["automountServiceAccountToken"] is False
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True
        assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid))
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}
            (tmp,) = (m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")  # noqa: S108
            assert "emptyDir" in volumes[tmp["name"]], "the only writable place is an emptyDir"
    account = one(objects, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


def deploy_doc_secret_keys() -> set[str]:
    """The keys docs/deploy.md's `kubectl create secret generic entrepot` gives."""
    text = (facts.ROOT / "docs" / "deploy.md").read_text()
    commands = re.findall(rf"create secret generic {SECRET_NAME}\b((?:.*\\\n)*.*)", text)
    assert commands, "docs/deploy.md shows how to create the Secret"
    return {key for command in commands for key in re.findall(r"--from-literal=([\w-]+)=", command)}


def test_secrets_are_references_to_documented_settings(objects: tuple[Object, ...]) -> None:
    assert maybe(objects, "Secret") is None, "no secret value is shipped"
    documented = facts.documented_settings()
    keys = deploy_doc_secret_keys()
    referenced: dict[str, str] = {}
    for pod in pod_specs(objects):
        for container in pod["containers"]:
            for variable in container.get("env", []):
                ref = variable["valueFrom"]["secretKeyRef"]
                assert variable["name"] in facts.SETTINGS, variable["name"]
                assert variable["name"] in documented, variable["name"]
                assert ref["name"] == SECRET_NAME
                assert ref["key"] in keys, f"{ref['key']}: not in docs/deploy.md"
                assert referenced.setdefault(variable["name"], ref["key"]) == ref["key"]
    assert set(referenced) == {
        "ENTREPOT_DATABASE_URL",
        "ENTREPOT_DIRECT_DATABASE_URL",
        "ENTREPOT_REDIS_URL",
        "ENTREPOT_BOOTSTRAP_TOKEN",
    }
    assert not set(referenced) & set(config(objects)), "a secret is never in the ConfigMap"


def test_the_configmap_holds_real_settings_every_pod_reads(objects: tuple[Object, ...]) -> None:
    configmap = one(objects, "ConfigMap")
    assert set(configmap["data"]) <= facts.SETTINGS
    for pod in pod_specs(objects):
        for container in pod["containers"]:
            (source,) = container["envFrom"]
            assert source["configMapRef"]["name"] == configmap["metadata"]["name"]


def test_the_migration_job_runs_migrate_on_the_same_image_and_store(
    objects: tuple[Object, ...],
) -> None:
    job = one(objects, "Job")["spec"]
    (migrate,) = job["template"]["spec"]["containers"]
    api = api_container(objects)
    assert migrate["args"] == ["migrate"]
    assert api["args"] == ["serve"]
    # The image's ENTRYPOINT (entrepot) runs: neither container replaces it.
    assert "command" not in migrate
    assert "command" not in api
    assert migrate["image"] == api["image"]
    store = next(e for e in api["env"] if e["name"] == "ENTREPOT_DATABASE_URL")
    assert store in migrate["env"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert job["backoffLimit"] >= 1


FIRST_APPLY = "app.kubernetes.io/component!=api"  # docs/deploy.md: before the Deployment


def test_the_first_apply_holds_what_the_migration_job_needs(objects: tuple[Object, ...]) -> None:
    assert f"-l '{FIRST_APPLY}'" in (facts.ROOT / "docs" / "deploy.md").read_text()
    key, _, value = FIRST_APPLY.partition("!=")
    first = [o for o in objects if o["metadata"].get("labels", {}).get(key) != value]
    names = {(o["kind"], o["metadata"]["name"]) for o in first}
    assert "Deployment" not in {kind for kind, _ in names}
    job = one(objects, "Job")
    assert ("Job", job["metadata"]["name"]) in names
    pod = job["spec"]["template"]["spec"]
    assert ("ServiceAccount", pod["serviceAccountName"]) in names
    for container in pod["containers"]:
        for source in container["envFrom"]:
            assert ("ConfigMap", source["configMapRef"]["name"]) in names
