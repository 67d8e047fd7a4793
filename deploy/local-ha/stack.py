"""A local highly-available PostgreSQL for Entrepot: etcd x3, Patroni x2, HAProxy.

Why: the platform promises that a PostgreSQL failover loses no acknowledged
write and keeps the change feed gapless. Proving that needs a real failover,
so this module starts, from an empty directory, the same moving parts a
production deployment uses, all on 127.0.0.1:

- a 3-member etcd cluster (Patroni's consensus store), client ports 23791-23793;
- two Patroni-managed PostgreSQL 15 nodes (pg1 on 5441, pg2 on 5442, REST on
  8011/8012) in synchronous mode, so an acknowledged commit is on both nodes,
  with ``primary_start_timeout: 0`` so a dead postmaster fails over instead of
  being restarted in place;
- HAProxy on 5440 routing to whichever node Patroni's ``/primary`` check says
  is the leader (stats on 7000), cutting sessions to a node marked down.

It installs nothing (``deploy/local-ha/setup.sh`` does); it checks what it
needs and says plainly what is missing. As root, Patroni and PostgreSQL run
as the ``postgres`` user (PostgreSQL refuses root), so the directory must be
reachable by that user (e.g. under /var/tmp, not /tmp/pytest-of-root).

CLI: ``python deploy/local-ha/stack.py up|down|status [--dir DIR] [--wipe]``.
API: ``with Stack(dir) as s: s.dsn, s.primary_name(), s.kill_primary_postmaster()``.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

# Under /var/tmp on purpose: the postgres user must reach both.
DEFAULT_DIR = Path("/var/tmp/entrepot-ha/stack")  # noqa: S108
DEFAULT_PATRONI_VENV = Path("/var/tmp/entrepot-ha/venv")  # noqa: S108
DEFAULT_PG_BIN = Path("/usr/lib/postgresql/15/bin")
SCOPE = "entrepot-local"
SUPERUSER, SUPERUSER_PASSWORD = "postgres", "entrepot-ha"
HAPROXY_PORT, STATS_PORT = 5440, 7000
ETCD = [("etcd1", 23791, 23801), ("etcd2", 23792, 23802), ("etcd3", 23793, 23803)]
NODES = [("pg1", 5441, 8011), ("pg2", 5442, 8012)]
PATRONI_STOP_SECONDS = 90.0  # a clean stop in synchronous mode takes ~17 s


class MissingPrerequisites(RuntimeError):
    """Raised with one plain sentence per missing piece."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Tools:
    etcd: str
    haproxy: str
    patroni: str
    pg_bin: Path


def _which(name: str, *extra: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in extra:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _as_postgres() -> list[str]:
    """Prefix that runs a command as ``postgres`` when we are root (setpriv keeps the PID)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups"]


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def check_prerequisites() -> Tools:
    """Find every binary the stack needs, or raise MissingPrerequisites saying what is absent."""
    problems: list[str] = []
    hint = "run deploy/local-ha/setup.sh"
    etcd = _which("etcd", "/usr/bin/etcd")
    if not etcd:
        problems.append(f"no etcd binary (Debian package etcd-server; {hint})")
    haproxy = _which("haproxy", "/usr/sbin/haproxy")
    if not haproxy:
        problems.append(f"no haproxy binary (Debian package haproxy; {hint})")
    venv = Path(os.environ.get("ENTREPOT_HA_PATRONI", str(DEFAULT_PATRONI_VENV)))
    patroni = venv if venv.is_file() else venv / "bin" / "patroni"
    if not os.access(patroni, os.X_OK):
        problems.append(
            f"no Patroni at {patroni} (set ENTREPOT_HA_PATRONI to a virtualenv with "
            f"patroni[etcd3] and psycopg, or {hint})"
        )
    pg_bin = Path(os.environ.get("ENTREPOT_HA_PG_BIN", str(DEFAULT_PG_BIN)))
    missing_pg = [
        b
        for b in ("postgres", "initdb", "pg_ctl", "pg_basebackup", "pg_rewind", "psql")
        if not os.access(pg_bin / b, os.X_OK)
    ]
    if missing_pg:
        problems.append(f"PostgreSQL 15 binaries missing in {pg_bin}: {', '.join(missing_pg)}")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            problems.append("running as root but there is no 'postgres' user to run PostgreSQL")
        if not shutil.which("setpriv"):
            problems.append("running as root but setpriv (util-linux) is missing")
        elif os.access(patroni, os.X_OK):
            probe = subprocess.run(  # noqa: S603 - fixed argv
                [*_as_postgres(), str(patroni), "--version"],
                capture_output=True,
                check=False,
                cwd="/",
            )
            if probe.returncode != 0:
                problems.append(
                    f"the postgres user cannot run {patroni} (build the venv from "
                    f"/usr/bin/python3 in a directory it can read; {hint})"
                )
    if problems:
        raise MissingPrerequisites(problems)
    assert etcd
    assert haproxy
    return Tools(etcd, haproxy, str(patroni), pg_bin)


def _get_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    """GET a JSON document; Patroni answers health checks with 503 plus a body."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - local http
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body or b"null")
        except ValueError:
            return e.code, None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Stack:
    """The running stack rooted at ``directory``; a context manager that ups and downs it."""

    def __init__(self, directory: Path | str = DEFAULT_DIR, *, wipe_on_exit: bool = False) -> None:
        self.dir = Path(directory).resolve()
        self.wipe_on_exit = wipe_on_exit
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- public API -------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """Superuser URL through HAProxy: always the current primary."""
        return f"postgresql://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{HAPROXY_PORT}/postgres"

    def __enter__(self) -> Stack:
        try:
            self.up()
        except BaseException:
            self.down(wipe=self.wipe_on_exit)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down(wipe=self.wipe_on_exit)

    def up(self, timeout: float = 120.0) -> None:
        """Start etcd, Patroni and HAProxy; return once a primary takes writes via HAProxy."""
        tools = check_prerequisites()
        if self._running_pids():
            raise RuntimeError(f"a stack already runs from {self.dir}; run down first")
        busy = [p for p in self._ports() if _port_in_use(p)]
        if busy:
            raise MissingPrerequisites([f"ports already in use on 127.0.0.1: {busy}"])
        self._prepare_dirs()
        self._write_configs(tools)
        deadline = time.monotonic() + timeout
        for name, _client, _peer in ETCD:
            self._start(name, [tools.etcd, *self._etcd_args(name)])
        for name, client, _peer in ETCD:
            self._wait(deadline, f"{name} healthy", lambda c=client: self._etcd_healthy(c))
        for name, _pg, _rest in NODES:
            self._start(
                name,
                [*_as_postgres(), tools.patroni, str(self.dir / "patroni" / f"{name}.yml")],
                cwd=self.dir / "pg",
                env=self._postgres_env(),
            )
        self._start(
            "haproxy", [tools.haproxy, "-db", "-f", str(self.dir / "haproxy" / "haproxy.cfg")]
        )
        self.wait_healthy(deadline - time.monotonic())

    def wait_healthy(self, timeout: float = 120.0) -> None:
        """Wait for a leader, a streaming synchronous standby and a write through HAProxy.

        Without a synchronous standby Patroni will not promote anyone, so a
        failover test must not start before one is in place.
        """
        deadline = time.monotonic() + timeout
        self._wait(deadline, "a leader and a synchronous standby", self._has_sync_pair)
        self._wait(deadline, f"a write through HAProxy on {HAPROXY_PORT}", self._write_probe)

    def down(self, *, wipe: bool = False) -> None:
        """SIGTERM Patroni (replicas first, then the leader), then etcd, then HAProxy."""
        pids = self._running_pids()
        leader = self.primary_name(missing_ok=True)
        nodes = sorted((n for n, _p, _r in NODES), key=lambda n: n == leader)
        for group, grace in (
            (nodes, PATRONI_STOP_SECONDS),
            ([n for n, _c, _p in ETCD], 20.0),
            (["haproxy"], 10.0),
        ):
            for name in group:
                if name in pids:
                    self._stop(name, pids[name], grace)
        self._kill_orphan_postmasters()
        self._procs.clear()
        state = self.dir / "stack.json"
        if state.exists():
            state.unlink()
        if wipe and self.dir.exists():
            shutil.rmtree(self.dir)

    def members(self) -> list[dict[str, Any]]:
        """Patroni's view of the cluster (name, role, state, lag), from any node that answers."""
        for _name, _pg, rest in NODES:
            try:
                status, body = _get_json(f"http://127.0.0.1:{rest}/cluster")
            except OSError:
                continue
            if status == 200 and isinstance(body, dict):
                return list(body.get("members", []))
        return []

    def primary_name(self, *, missing_ok: bool = False) -> str | None:
        """The node Patroni's ``/primary`` check passes on (what HAProxy routes to)."""
        for name, _pg, rest in NODES:
            try:
                status, _body = _get_json(f"http://127.0.0.1:{rest}/primary", timeout=1.0)
            except OSError:
                continue
            if status == 200:
                return name
        if missing_ok:
            return None
        raise RuntimeError("no node is primary")

    def kill_primary_postmaster(self) -> tuple[str, int]:
        """SIGKILL the primary's postmaster (not Patroni): a crashed database server."""
        name = self.primary_name()
        assert name is not None
        pid = self.postmaster_pid(name)
        if pid is None:
            raise RuntimeError(f"{name} has no running postmaster")
        os.kill(pid, signal.SIGKILL)
        return name, pid

    def postmaster_pid(self, name: str) -> int | None:
        try:
            first = (self.dir / "pg" / name / "data" / "postmaster.pid").read_text().split()[0]
        except (OSError, IndexError):
            return None
        pid = int(first)
        return pid if _alive(pid) and "postgres" in _cmdline(pid) else None

    def status(self) -> dict[str, Any]:
        pids = self._running_pids()
        return {
            "dir": str(self.dir),
            "processes": pids,
            "primary": self.primary_name(missing_ok=True) if pids else None,
            "members": self.members() if pids else [],
            "dsn": self.dsn,
        }

    # -- internals --------------------------------------------------------------

    @staticmethod
    def _ports() -> list[int]:
        ports = [HAPROXY_PORT, STATS_PORT]
        for _n, client, peer in ETCD:
            ports += [client, peer]
        for _n, pg, rest in NODES:
            ports += [pg, rest]
        return ports

    def _prepare_dirs(self) -> None:
        for sub in ("etcd", "haproxy", "patroni", "logs"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        pg = self.dir / "pg"
        for name, _p, _r in NODES:
            (pg / name).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self.dir.chmod(0o755)  # postgres must traverse it
            owner = pwd.getpwnam("postgres")
            for path in [pg, *pg.rglob("*")]:
                os.chown(path, owner.pw_uid, owner.pw_gid)
            probe = subprocess.run(  # noqa: S603 - fixed argv
                [*_as_postgres(), "test", "-w", str(pg)], check=False, cwd="/"
            )
            if probe.returncode != 0:
                raise MissingPrerequisites(
                    [
                        f"the postgres user cannot write {pg}: pick a directory whose parents it "
                        "can traverse (e.g. under /var/tmp)"
                    ]
                )

    def _postgres_env(self) -> dict[str, str]:
        home = pwd.getpwnam("postgres").pw_dir if os.geteuid() == 0 else os.environ["HOME"]
        return {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}

    def _etcd_args(self, name: str) -> list[str]:
        client, peer = next((c, p) for n, c, p in ETCD if n == name)
        cluster = ",".join(f"{n}=http://127.0.0.1:{p}" for n, _c, p in ETCD)
        return [
            f"--name={name}",
            f"--data-dir={self.dir / 'etcd' / name}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster={cluster}",
            "--initial-cluster-state=new",
            f"--initial-cluster-token={SCOPE}",
            "--log-level=warn",
        ]

    def _write_configs(self, tools: Tools) -> None:
        hosts = [f"127.0.0.1:{c}" for _n, c, _p in ETCD]
        for name, pg, rest in NODES:
            node = self.dir / "pg" / name
            # JSON is YAML: no YAML library needed on this side.
            config = {
                "scope": SCOPE,
                "namespace": "/entrepot/",
                "name": name,
                "log": {"level": "INFO"},
                "restapi": {
                    "listen": f"127.0.0.1:{rest}",
                    "connect_address": f"127.0.0.1:{rest}",
                },
                "etcd3": {"hosts": hosts},
                "bootstrap": {
                    "dcs": {
                        "ttl": 20,
                        "loop_wait": 5,
                        "retry_timeout": 5,
                        "maximum_lag_on_failover": 1_048_576,
                        "synchronous_mode": True,
                        "primary_start_timeout": 0,
                        "postgresql": {
                            "use_pg_rewind": True,
                            "parameters": {
                                "wal_level": "replica",
                                "hot_standby": "on",
                                "wal_log_hints": "on",
                                "max_connections": 200,
                                "max_wal_senders": 10,
                                "max_replication_slots": 10,
                                "wal_keep_size": "256MB",
                            },
                        },
                    },
                    "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
                },
                "postgresql": {
                    "listen": f"127.0.0.1:{pg}",
                    "connect_address": f"127.0.0.1:{pg}",
                    "data_dir": str(node / "data"),
                    "bin_dir": str(tools.pg_bin),
                    "pgpass": str(node / "pgpass"),
                    "authentication": {
                        "superuser": {"username": SUPERUSER, "password": SUPERUSER_PASSWORD},
                        "replication": {"username": "replicator", "password": "replicator"},
                    },
                    "parameters": {"unix_socket_directories": str(node)},
                    "pg_hba": [
                        "local all all trust",
                        "host replication replicator 127.0.0.1/32 scram-sha-256",
                        "host all all 127.0.0.1/32 scram-sha-256",
                    ],
                },
                "tags": {"nofailover": False, "noloadbalance": False},
            }
            path = self.dir / "patroni" / f"{name}.yml"
            path.write_text(json.dumps(config, indent=2) + "\n")
            path.chmod(0o644)
        servers = "\n".join(
            f"    server {name} 127.0.0.1:{pg} check port {rest}" for name, pg, rest in NODES
        )
        (self.dir / "haproxy" / "haproxy.cfg").write_text(
            f"""global
    maxconn 2000

defaults
    mode tcp
    log global
    retries 2
    timeout connect 2s
    timeout client 30m
    timeout server 30m
    timeout check 2s

listen stats
    mode http
    bind 127.0.0.1:{STATS_PORT}
    stats enable
    stats uri /

listen primary
    bind 127.0.0.1:{HAPROXY_PORT}
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 1s fastinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
{servers}
"""
        )

    def _start(
        self,
        name: str,
        argv: list[str],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        log = self.dir / "logs" / f"{name}.log"
        with log.open("ab") as out:
            # Own session: a Ctrl-C aimed at the caller must not kill etcd
            # before Patroni has stopped PostgreSQL cleanly.
            proc = subprocess.Popen(  # noqa: S603 - argv built here
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd or self.dir,
                env=env,
                start_new_session=True,
            )
        self._procs[name] = proc
        self._save_state()
        time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited at once:\n{log.read_text()[-3000:]}")

    def _save_state(self) -> None:
        pids = {**self._running_pids(), **{n: p.pid for n, p in self._procs.items()}}
        (self.dir / "stack.json").write_text(json.dumps(pids, indent=2) + "\n")

    def _running_pids(self) -> dict[str, int]:
        """PIDs from the state file still running a command that names this directory."""
        try:
            recorded: dict[str, int] = json.loads((self.dir / "stack.json").read_text())
        except (OSError, ValueError):
            recorded = {}
        recorded.update({n: p.pid for n, p in self._procs.items()})
        return {n: pid for n, pid in recorded.items() if self._ours(pid)}

    def _ours(self, pid: int) -> bool:
        return _alive(pid) and str(self.dir) in _cmdline(pid)

    def _stop(self, name: str, pid: int, grace: float) -> None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        proc = self._procs.get(name)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return
            if proc is None and not _alive(pid):
                return
            time.sleep(0.2)
        print(f"{name} (pid {pid}) ignored SIGTERM for {grace:.0f} s: SIGKILL", file=sys.stderr)
        os.kill(pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(timeout=10)

    def _kill_orphan_postmasters(self) -> None:
        """A Patroni that had to be SIGKILLed leaves PostgreSQL running: stop it too."""
        for name, _pg, _rest in NODES:
            pid = self.postmaster_pid(name)
            if pid is not None and str(self.dir) in _cmdline(pid):
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown
                deadline = time.monotonic() + 10
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.2)

    @staticmethod
    def _wait(deadline: float, what: str, ready: Any) -> None:
        while True:
            try:
                if ready():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.5)

    @staticmethod
    def _etcd_healthy(client: int) -> bool:
        status, body = _get_json(f"http://127.0.0.1:{client}/health")
        return status == 200 and isinstance(body, dict) and body.get("health") == "true"

    def _has_sync_pair(self) -> bool:
        members = self.members()
        leader = any(m.get("role") == "leader" and m.get("state") == "running" for m in members)
        sync = any(
            m.get("role") == "sync_standby" and m.get("state") == "streaming" for m in members
        )
        return leader and sync

    def _write_probe(self) -> bool:
        """A transaction that gets an xid commits (and waits for the sync standby) or fails."""
        tools = check_prerequisites()
        env = {**os.environ, "PGCONNECT_TIMEOUT": "3"}
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv
                [str(tools.pg_bin / "psql"), self.dsn, "-XtAc", "SELECT txid_current()"],
                capture_output=True,
                timeout=10,
                check=False,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"default {DEFAULT_DIR}")
    parser.add_argument("--wipe", action="store_true", help="down: also delete the directory")
    args = parser.parse_args(argv)
    stack = Stack(args.dir)
    try:
        if args.command == "up":
            started = time.monotonic()
            try:
                stack.up()
            except BaseException:
                stack.down()  # nothing half-started is left behind
                raise
            print(f"up in {time.monotonic() - started:.1f} s; primary {stack.primary_name()}")
            print(f"DSN (HAProxy, always the primary): {stack.dsn}")
            print(f"HAProxy stats: http://127.0.0.1:{STATS_PORT}/  logs: {stack.dir / 'logs'}")
        elif args.command == "down":
            stack.down(wipe=args.wipe)
            print(f"stopped{' and wiped' if args.wipe else ''}: {stack.dir}")
        else:
            print(json.dumps(stack.status(), indent=2))
    except MissingPrerequisites as exc:
        print("missing prerequisites:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
