"""deploy/observability/: the alert rules and the dashboard are valid PromQL, checked by
Prometheus's own ``promtool`` (Debian's ``prometheus`` package), and the names they
read are found as PromQL finds them. That every name is exported is checked against
a running server in tests/e2e/test_operator_metrics.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.promql import OBSERVABILITY, dashboard_queries, metric_names, rule_queries

RULES = sorted(OBSERVABILITY.glob("*.rules.yml"))
DASHBOARDS = sorted(OBSERVABILITY.glob("*.json"))


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool not found: it comes with Debian's `prometheus` package"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def check_rules(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), "check", "rules", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_there_are_rules_and_a_dashboard() -> None:
    assert RULES, f"no *.rules.yml in {OBSERVABILITY}"
    assert DASHBOARDS, f"no dashboard in {OBSERVABILITY}"


def test_promtool_accepts_the_alert_rules() -> None:
    checked = check_rules(*RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: promtool reads the expressions, not just the YAML."""
    broken = tmp_path / "broken.rules.yml"
    broken.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "sum(("}]}]})
    )
    assert check_rules(broken).returncode != 0


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """Grafana's variables given values, the queries become recording rules for promtool."""
    queries = [q for path in DASHBOARDS for q in dashboard_queries(path)]
    concrete = [
        re.sub(r"\$__rate_interval|\$__interval", "5m", q).replace("$instance", ".*")
        for q in queries
        if not q.startswith("label_values(")
    ]
    rules = [{"record": f"dashboard:query{i}", "expr": q} for i, q in enumerate(concrete)]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = check_rules(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_says_what_happened_and_what_to_do() -> None:
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                annotations = rule.get("annotations", {})
                for key in ("summary", "description", "runbook"):
                    assert annotations.get(key), f"{rule['alert']} has no {key}"
                assert rule["labels"]["severity"] in {"critical", "warning", "info"}


def test_metric_names_are_told_from_functions_labels_and_keywords() -> None:
    assert metric_names("up == 0") == {"up"}
    assert metric_names(
        'sum by (route, status) (rate(a_total{instance=~"$instance", route!~".*(x|y)"}[5m]))'
    ) == {"a_total"}
    assert metric_names(
        "histogram_quantile(0.99, sum without (pod) (rate(b_bucket[$__rate_interval])))"
    ) == {"b_bucket"}
    assert metric_names("a / on (job) group_left (version) b > bool 1e3 offset 5m") == {"a", "b"}
    assert metric_names('c{le="+Inf", q="sum(not_a_metric)"} and ignoring (x) d:recorded') == {
        "c",
        "d:recorded",
    }
    assert metric_names("max_over_time(e[10m:1m]) unless f") == {"e", "f"}
    assert metric_names("label_values(g_total, instance)") == {"g_total"}
    assert metric_names("topk(10, h) or vector(0)") == {"h"}


def test_the_shipped_queries_name_metrics() -> None:
    """Each query reads at least one metric (the extraction found something to check)."""
    for path in DASHBOARDS:
        for query in dashboard_queries(path):
            assert metric_names(query), query
    for path in RULES:
        for query in rule_queries(path):
            assert metric_names(query), query
