"""Run the example DAGs in a real (loopback-only) Airflow deployment and check what they did.

Used by scripts/deployment-check, which creates the virtualenv first. It starts Airflow's own
components as separate processes (api-server, scheduler, dag-processor, triggerer; with
``--executor celery`` also a private PostgreSQL cluster, a Redis broker and two Celery workers)
and the Braze sandbox, all on 127.0.0.1, in a throwaway AIRFLOW_HOME under .deployment-check/.
It triggers the example DAGs through the REST API without a logical date, watches them, checks
the sandbox's ledger, the logs and the processes, prints one PASS/FAIL line per check, and stops
every process it started, whatever happens.

Only the standard library: it runs with the virtualenv's Python, but never imports Airflow.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".deployment-check"
PROG = "scripts/deployment-check"
SEND_ENDPOINT = "POST /messages/send"
POOL = "braze_workspace"
POOL_SLOTS = 4
#: The sandbox's limit for the shared bucket in the Celery variant: binding for the sharded send
#: (200,000 recipients = 4,000 requests, about 80 s at 50 a second).
SHARED_LIMIT = (500, 10)
SHARDED_AUDIENCE = 200_000
#: How many of the sharded send's requests must have been accepted before a worker is killed.
KILL_AFTER_REQUESTS = 1_000
#: What the triggerer logs when a trigger blocks its event loop.
BLOCKED_LOOP = re.compile(r"badly-written trigger|async thread was blocked", re.IGNORECASE)


# ====================================================================== pure helpers (unit tested)


def ledger_counts(ledger: Iterable[Mapping[str, Any]], send_ids: Iterable[str]) -> Counter[str]:
    """How many accepted ``/messages/send`` calls named each recipient, over the calls tagged with
    one of ``send_ids`` (a run's send IDs). Recipients are external user IDs (``external_user_ids``)
    or, for alias and recipient objects, their keys as the sandbox reports them."""
    wanted = set(send_ids)
    counts: Counter[str] = Counter()
    for entry in ledger:
        if entry.get("endpoint") != SEND_ENDPOINT:
            continue
        request = entry.get("request") or {}
        if request.get("send_id") not in wanted:
            continue
        counts.update(str(user) for user in request.get("external_user_ids") or [])
        for alias in request.get("user_aliases") or []:
            counts[f"alias:{alias.get('alias_label')}:{alias.get('alias_name')}"] += 1
        for recipient in request.get("recipients") or []:
            if "external_user_id" in recipient:
                counts[str(recipient["external_user_id"])] += 1
    return counts


@dataclass
class Delivery:
    """What the ledger says of one run's recipients, against who should have got the message."""

    delivered_once: int
    twice_or_more: list[str]
    missing: list[str]
    in_doubt_delivered: int
    in_doubt_missing: int
    unexpected: list[str]

    @property
    def ok(self) -> bool:
        return not (self.twice_or_more or self.missing or self.unexpected)

    def describe(self) -> str:
        parts = [f"{self.delivered_once} delivered exactly once"]
        if self.in_doubt_delivered or self.in_doubt_missing:
            parts.append(
                f"{self.in_doubt_delivered + self.in_doubt_missing} reported in doubt "
                f"({self.in_doubt_delivered} of them delivered once, {self.in_doubt_missing} not)"
            )
        for name, values in (
            ("delivered more than once", self.twice_or_more),
            ("never delivered and not reported in doubt", self.missing),
            ("delivered but not in the audience", self.unexpected),
        ):
            if values:
                parts.append(f"{len(values)} {name} (e.g. {', '.join(values[:3])})")
        return "; ".join(parts)


def check_delivery(
    counts: Mapping[str, int], expected: Iterable[str], in_doubt: Iterable[str] = ()
) -> Delivery:
    """Every expected recipient delivered exactly once, or (never more than once) reported in
    doubt; nobody delivered twice; nobody delivered who was not expected."""
    expected_set = set(expected)
    doubt = set(in_doubt)
    twice = sorted(r for r, n in counts.items() if n > 1)
    missing = sorted(r for r in expected_set if counts.get(r, 0) == 0 and r not in doubt)
    unexpected = sorted(r for r in counts if r not in expected_set)
    once = sum(1 for r in expected_set if counts.get(r, 0) == 1)
    doubt_delivered = sum(1 for r in doubt & expected_set if counts.get(r, 0) == 1)
    doubt_missing = sum(1 for r in doubt & expected_set if counts.get(r, 0) == 0)
    return Delivery(once, twice, missing, doubt_delivered, doubt_missing, unexpected)


def batch_recipients(
    recipients: list[str], ranges: Iterable[Iterable[int]], batch_size: int = 50
) -> set[str]:
    """The recipients of ``[first, last + 1)`` ranges of batch numbers (a send's summary's
    ``in_doubt_ranges``): batch i holds recipients ``batch_size * i`` to ``batch_size * (i + 1) - 1``
    of the send, in the order read."""
    chosen: set[str] = set()
    for first, end in ranges:
        chosen.update(recipients[first * batch_size : end * batch_size])
    return chosen


def secret_forms(secret: str) -> list[str]:
    """The forms a leaked secret may take in a log: as is, URL-encoded, and base64 (standard and
    URL-safe, alone and in ``:secret`` as in basic auth)."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
    for raw in (secret, f":{secret}", f"Bearer {secret}"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(raw.encode()).decode()
            forms.add(text)
            forms.add(text.rstrip("="))
    return sorted(forms)


def leaks(text: str, forms: Iterable[str]) -> list[str]:
    """Which of ``forms`` appear in ``text``."""
    return [form for form in forms if form and form in text]


def without_announcement(text: str) -> str:
    """The sandbox's output without the lines it prints at start to announce the key it issues
    (``API key: ...`` and the connection's ``export`` line): everything else it logs is searched."""
    return "\n".join(
        line
        for line in text.splitlines()
        if not line.startswith(("API key: ", "Airflow connection: export "))
    )


def blocked_loop_lines(text: str) -> list[str]:
    """The lines where the triggerer said a trigger blocked its event loop."""
    return [line.strip() for line in text.splitlines() if BLOCKED_LOOP.search(line)]


_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z?")


def _when(line: str) -> datetime | None:
    match = _TIMESTAMP.search(line)
    return datetime.fromisoformat(match.group(1)) if match else None


def first_start_window(trigger_logs: list[str]) -> tuple[datetime, datetime] | None:
    """From the first Braze trigger's "starting" line to its first line after it (its first
    check's result): the triggerer's start-up of its first trigger in this deployment."""
    best: tuple[datetime, datetime] | None = None
    for text in trigger_logs:
        lines = [line for line in text.splitlines() if line.strip()]
        for index, line in enumerate(lines):
            if ") starting" in line:
                start = _when(line)
                end = _when(lines[index + 1]) if index + 1 < len(lines) else start
                if start and end and (best is None or start < best[0]):
                    best = (start, end)
                break
    return best


def blocks_outside_first_start(blocked: list[str], window: tuple[datetime, datetime] | None) -> list[str]:
    """The blocked-loop warnings that do not fall in the first trigger's start-up (Airflow's
    triggerer warned once there under load in some runs: measured 0.25-0.37 s, while the
    trigger's own set-up runs in a worker thread, which tests/unit/test_trigger_event_loop.py
    checks). Any other warning is a block to fail on."""
    if window is None:
        return blocked
    start, end = window
    outside = []
    for line in blocked:
        when = _when(line.split(": ", 1)[-1])
        if when is None or not start <= when <= end + timedelta(seconds=0.5):
            outside.append(line)
    return outside


def throughput(times: list[float], limit: int, window: float, gap: float = 5.0) -> dict[str, float]:
    """Requests per second over a send (first to last accepted request), against the limit's
    rate (``limit / window``), overall and without pauses longer than ``gap`` seconds (a killed
    worker's tasks waiting to be retried)."""
    times = sorted(times)
    rate = limit / window
    if len(times) < 2:
        return {
            "requests": float(len(times)),
            "seconds": 0.0,
            "ratio": 0.0,
            "active_seconds": 0.0,
            "active_ratio": 0.0,
        }
    seconds = times[-1] - times[0]
    steps = [b - a for a, b in itertools.pairwise(times) if b - a <= gap]
    active = sum(steps)
    return {
        "requests": float(len(times)),
        "seconds": seconds,
        "ratio": (len(times) - 1) / seconds / rate if seconds else 0.0,
        "active_seconds": active,
        "active_ratio": len(steps) / active / rate if active else 0.0,
    }


def share_429(
    statuses: Mapping[str, Mapping[str, int]], before: Mapping[str, Mapping[str, int]], path: str
) -> tuple[int, int]:
    """(429 answers, all answers) for ``path`` between two ``/_sandbox/statuses`` readings."""
    now, then = statuses.get(path, {}), before.get(path, {})
    delta = {code: count - then.get(code, 0) for code, count in now.items()}
    return delta.get("429", 0), sum(delta.values())


# ====================================================================== processes


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Deployment:
    work: Path
    env: dict[str, str]
    components: dict[str, Component] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    pid_file: Path | None = None

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        stop_signal: int = signal.SIGTERM,
        user: int | None = None,
        group: int | None = None,
    ) -> Component:
        log = self.work / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                env=env or self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as a whole
                cwd=self.work if user is None else "/",
                user=user,
                group=group,
                extra_groups=[] if user is not None else None,
            )
        component = Component(name, process, log, stop_signal)
        self.components[name] = component
        self._write_pids()
        return component

    def _write_pids(self) -> None:
        if self.pid_file is not None:
            self.pid_file.write_text("".join(f"{c.pid}\n" for c in self.components.values()))

    def stop(self, name: str, *, sig: int | None = None, timeout: float = 30.0) -> None:
        component = self.components.pop(name, None)
        if component is None:
            return
        _stop_group(component.process, sig or component.stop_signal, timeout)
        self._write_pids()

    def stop_all(self) -> None:
        # Workers and Airflow first, the databases and the sandbox last.
        order = [n for n in self.components if n not in ("postgres", "redis", "sandbox")]
        order += [n for n in ("redis", "sandbox", "postgres") if n in self.components]
        for name in order:
            self.stop(name)


def _stop_group(process: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Signal the process's whole group (and its descendants that left the group), wait, then
    SIGKILL whatever is left."""
    pids = [process.pid, *descendants(process.pid)]
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
    for pid in pids[1:]:
        _signal(pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(p) for p in pids[1:]):
        time.sleep(0.2)
    for pid in [process.pid, *pids[1:]]:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        found[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline)
    return found


def descendants(root: int, table: dict[int, tuple[int, str]] | None = None) -> list[int]:
    table = _processes() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def listening_sockets() -> dict[int, tuple[str, int]]:
    """Socket inode -> (address, port) of every listening TCP socket (IPv4 and IPv6)."""
    found = {}
    for name, width in (("tcp", 8), ("tcp6", 32)):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], int(parts[9])
            if state != "0A":  # LISTEN
                continue
            address, port = local.split(":")
            found[inode] = (_address(address, width), int(port, 16))
    return found


def _address(hex_address: str, width: int) -> str:
    raw = bytes.fromhex(hex_address)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listeners_of(pids: Iterable[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every listening socket the processes hold."""
    sockets = listening_sockets()
    found = []
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in sockets:
                    found.append((pid, *sockets[inode]))
    return sorted(set(found))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    return any(p == port for (_, p) in listening_sockets().values())


# ====================================================================== HTTP


class Api:
    """Airflow's REST API with a token from the simple auth manager (all admins)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token: str | None = None

    def login(self) -> None:
        self.token = _http("GET", f"{self.base}/auth/token")["access_token"]

    def __call__(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        url = f"{self.base}/api/v2{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return _http(method, url, body, token=self.token)


def _http(method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 30) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback only
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
        text = answer.read()
    return json.loads(text) if text else None


def _wait_for(what: str, probe: Any, timeout: float, interval: float = 1.0, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (OSError, urllib.error.URLError, ValueError, KeyError) as err:
            last = err
        time.sleep(interval)
    where = f"; see {log}" if log else ""
    raise CheckError(f"timed out after {timeout:.0f} s waiting for {what} ({last}){where}")


def _utc(text: str | None) -> datetime | None:
    """An ISO-8601 time from the REST API (``...Z`` or ``+00:00``) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


class CheckError(Exception):
    """The check cannot go on (a component did not start, a run never finished)."""


# ====================================================================== the check


@dataclass
class Result:
    name: str
    ok: bool
    detail: str
    log: str | None = None
    expected_failure: str | None = None


class Checker:
    def __init__(self, executor: str, work: Path, keep: bool) -> None:
        self.executor = executor
        self.work = work
        self.keep = keep
        self.results: list[Result] = []
        self.command = PROG + (" --executor celery" if executor == "celery" else "")
        self.started = time.monotonic()
        self.python = sys.executable
        self.airflow = str(Path(sys.executable).parent / "airflow")
        self.api_key = f"deploycheck-{secrets.token_hex(16)}"
        self.home = work / "airflow-home"
        self.deployment = Deployment(work, {}, pid_file=work / "pids")
        self.api: Api
        self.sandbox_url = ""
        self.pg_dir: Path | None = None
        self.deferred_seen: dict[tuple[str, str], set[str]] = {}
        self.ti_workers: dict[tuple[str, int, int], str] = {}

    # ------------------------------------------------------------------ reporting

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def check(
        self,
        name: str,
        ok: bool,
        detail: str,
        log: Path | str | None = None,
        expected_failure: str | None = None,
    ) -> None:
        result = Result(name, ok, detail, str(log) if log else None, expected_failure)
        self.results.append(result)
        where = f" (read {log})" if log and not ok else ""
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}{where}", flush=True)

    # ------------------------------------------------------------------ set-up

    def run(self) -> int:
        try:
            self._start()
            self._examples()
            if self.executor == "celery":
                self._sharded_send()
            self._log_checks()
            self._listener_check()
        except (CheckError, OSError, urllib.error.URLError) as err:
            self.check("deployment", False, f"{type(err).__name__}: {err}")
        finally:
            # A second Ctrl-C or TERM must not cut the clean-up short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.say("stopping every process started")
            ports = dict(self.deployment.ports)
            self.deployment.stop_all()
            self._after_stop(ports)
        return self._summary()

    def _start(self) -> None:
        ports = self.deployment.ports
        ports["api-server"] = free_port()
        ports["sandbox"] = free_port()
        self.home.mkdir(parents=True)
        (self.work / "tmp").mkdir()
        (self.work / "logs").mkdir(exist_ok=True)
        self.sandbox_url = self._start_sandbox(ports["sandbox"])
        api_url = f"http://127.0.0.1:{ports['api-server']}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                # The examples' generated audiences and spool files stay in the throwaway folder.
                "TMPDIR": str(self.work / "tmp"),
                # The checkout being checked wins over whatever the virtualenv has installed.
                "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if self.executor == "celery" else "LocalExecutor",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
                "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
                "AIRFLOW__API__BASE_URL": api_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(ports["api-server"]),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW_CONN_BRAZE_DEFAULT": json.dumps(
                    {"conn_type": "braze", "host": self.sandbox_url, "password": self.api_key}
                ),
            }
        )
        if self.executor == "celery":
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self._start_postgres()
            broker = self._start_redis()
            env["AIRFLOW__CELERY__BROKER_URL"] = broker
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        else:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{self.home / 'airflow.db'}"
        self.deployment.env = env

        self.say("airflow db migrate")
        migrate_log = self.work / "logs" / "db-migrate.log"
        with migrate_log.open("wb") as out:
            code = subprocess.run(
                [self.airflow, "db", "migrate"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                cwd=self.work,
            ).returncode
        if code:
            raise CheckError(f"'airflow db migrate' failed (exit {code}); see {migrate_log}")

        start = self.deployment.start
        self.say(
            f"starting api-server on {api_url}, scheduler, dag-processor, triggerer "
            f"({self.executor} executor)"
        )
        start(
            "api-server",
            [
                self.airflow,
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["api-server"]),
                "--workers",
                "1",
            ],
        )
        start("scheduler", [self.airflow, "scheduler", "--skip-serve-logs"])
        start("dag-processor", [self.airflow, "dag-processor"])
        start("triggerer", [self.airflow, "triggerer", "--skip-serve-logs"])
        if self.executor == "celery":
            for n in (1, 2):
                self._start_worker(n)

        self.api = Api(api_url)
        _wait_for(
            "the api-server",
            lambda: _http("GET", f"{api_url}/api/v2/monitor/health"),
            180,
            log=self._log("api-server"),
        )
        self.api.login()
        self.say("api-server up; token from GET /auth/token (simple auth manager, all admins)")
        try:
            self.api("GET", f"/pools/{POOL}")
        except urllib.error.HTTPError:
            self.api(
                "POST",
                "/pools",
                {"name": POOL, "slots": POOL_SLOTS, "description": "One Braze workspace's senders"},
            )
        examples = sorted(
            re.search(r'dag_id="([^"]+)"', p.read_text())[1]  # type: ignore[index]
            for p in (REPO / "example_dags").glob("*.py")
        )
        self.dag_ids = examples

        def parsed() -> bool:
            found = {d["dag_id"] for d in self.api("GET", "/dags", limit=100)["dags"]}
            return set(examples) <= found

        try:
            _wait_for("the dag-processor to parse the example DAGs", parsed, 240, interval=2)
        finally:
            errors = self.api("GET", "/importErrors")["import_errors"]
            self.check(
                "example DAGs parsed",
                not errors,
                f"{len(examples)} DAGs, no import errors"
                if not errors
                else "; ".join(
                    f"{e['filename']}: {e['stack_trace'].strip().splitlines()[-1]}" for e in errors
                ),
                self._log("dag-processor"),
            )
        for dag_id in examples:
            self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        self.say(f"unpaused {', '.join(examples)}")

    def alive_or_fail(self) -> None:
        """Stop waiting as soon as a component has exited: its log says why."""
        for name, component in self.deployment.components.items():
            code = component.process.poll()
            if code is not None:
                raise CheckError(f"{name} exited (status {code}); see {component.log}")

    def _task_logs(self, dag_id: str) -> Path:
        return self.home / "logs" / f"dag_id={dag_id}"

    def _log(self, name: str) -> Path:
        return self.work / "logs" / f"{name}.log"

    def _start_sandbox(self, port: int) -> str:
        ready = self.work / "sandbox-ready.json"
        argv = [
            self.python,
            "-m",
            "airflow_provider_braze.sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        argv += ["--api-key", self.api_key, "--ready-file", str(ready)]
        if self.executor == "celery":
            argv += ["--rate-limit", f"shared={SHARED_LIMIT[0]}/{SHARED_LIMIT[1]}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env["PYTHONPATH"] = str(REPO)
        self.deployment.start("sandbox", argv, env=env)
        info = _wait_for(
            "the Braze sandbox",
            lambda: ready.exists() and json.loads(ready.read_text()),
            60,
            0.2,
            self._log("sandbox"),
        )
        ready.unlink()  # it holds the key
        self.say(f"Braze sandbox on {info['url']}")
        return str(info["url"])

    def _start_postgres(self) -> str:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            raise CheckError(
                "PostgreSQL's initdb not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
            )
        bindir = bins[-1].parent
        port = self.deployment.ports["postgres"] = free_port()
        self.pg_dir = Path(tempfile.mkdtemp(prefix="braze-deploycheck-pg-"))
        data, sockets = self.pg_dir / "data", self.pg_dir / "sockets"
        password = secrets.token_hex(16)
        (self.pg_dir / "pw").write_text(password)
        sockets.mkdir()
        # PostgreSQL refuses to run as root: as root, run it as the postgres user (Debian's
        # postgresql package creates it), owning only this throwaway folder.
        run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise CheckError(
                    "running as root, and there is no postgres user to run PostgreSQL as "
                    "(apt-get install postgresql creates it)"
                ) from None
            os.chmod(self.pg_dir, 0o700)
            for path in (self.pg_dir, sockets, self.pg_dir / "pw"):
                os.chown(path, user.pw_uid, user.pw_gid)
            run_as = {"user": user.pw_uid, "group": user.pw_gid}
        init_log = self._log("postgres-initdb")
        with init_log.open("wb") as out:
            code = subprocess.run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "airflow",
                    f"--pwfile={self.pg_dir / 'pw'}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                cwd=self.pg_dir,
                extra_groups=[] if run_as else None,
                **run_as,
            ).returncode
        if code:
            raise CheckError(f"initdb failed (exit {code}); see {init_log}")
        self.deployment.start(
            "postgres",
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-k",
                str(sockets),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stop_signal=signal.SIGINT,  # fast shutdown
            **run_as,
        )
        env = {**os.environ, "PGPASSWORD": password}

        def ready() -> bool:
            probe = subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True,
                check=False,
            )
            return probe.returncode == 0

        _wait_for("PostgreSQL", ready, 60, 0.5, self._log("postgres"))
        created = subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", "airflow"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode:
            raise CheckError(f"createdb failed: {created.stderr.strip()}")
        self.say(f"PostgreSQL {bindir.parent.name} on 127.0.0.1:{port} (private cluster in {self.pg_dir})")
        return f"postgresql+psycopg2://airflow:{password}@127.0.0.1:{port}/airflow"

    def _start_redis(self) -> str:
        redis = shutil.which("redis-server")
        if redis is None:
            raise CheckError("redis-server not found (apt-get install redis-server)")
        port = self.deployment.ports["redis"] = free_port()
        self.deployment.start(
            "redis",
            [
                redis,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.work),
            ],
        )

        def ready() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")

        _wait_for("Redis", ready, 30, 0.3, self._log("redis"))
        self.say(f"Redis on 127.0.0.1:{port} (no persistence)")
        return f"redis://127.0.0.1:{port}/0"

    def _start_worker(self, n: int) -> Component:
        return self.deployment.start(
            f"worker{n}",
            [
                self.airflow,
                "celery",
                "worker",
                "--celery-hostname",
                f"worker{n}@deploycheck",
                "--concurrency",
                "3",
                "--skip-serve-logs",
            ],
        )

    # ------------------------------------------------------------------ runs

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        self.say(f"triggered {dag_id}: {run['dag_run_id']} (logical_date {run.get('logical_date')})")
        return str(run["dag_run_id"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return list(self.api("GET", path, limit=1000)["task_instances"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")["state"])

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        run = urllib.parse.quote(run_id, safe="")
        path = f"/dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}/xcomEntries/{key}"
        value = self.api("GET", path, map_index=map_index, deserialize="true", stringify="false")["value"]
        return json.loads(value) if isinstance(value, str) and value[:1] in '[{"' else value

    def watch(
        self,
        runs: dict[str, str],
        timeout: float,
        asset_consumer: str | None = None,
        since: datetime | None = None,
    ) -> dict[str, tuple[str, str]]:
        """Poll runs (dag_id -> run_id) until all are finished; note sensor states; pick up the
        asset-triggered run of ``asset_consumer`` once the scheduler creates it."""
        watched = {dag_id: (run_id, "queued") for dag_id, run_id in runs.items()}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.alive_or_fail()
            if asset_consumer and asset_consumer not in watched:
                for run in self.api("GET", f"/dags/{asset_consumer}/dagRuns", limit=20)["dag_runs"]:
                    queued = _utc(run.get("queued_at"))
                    if run["run_type"] == "asset_triggered" and queued and (since is None or queued >= since):
                        watched[asset_consumer] = (run["dag_run_id"], run["state"])
                        self.say(f"{asset_consumer} started by the asset event: {run['dag_run_id']}")
            for dag_id, (run_id, state) in list(watched.items()):
                if state in ("success", "failed"):
                    continue
                for ti in self.task_instances(dag_id, run_id):
                    self.deferred_seen.setdefault((dag_id, ti["task_id"]), set()).add(str(ti["state"]))
                new = self.run_state(dag_id, run_id)
                if new != state and new in ("success", "failed"):
                    self.say(f"{dag_id} {run_id}: {new}")
                watched[dag_id] = (run_id, new)
            finished = all(s in ("success", "failed") for _, s in watched.values())
            if finished and (asset_consumer is None or asset_consumer in watched):
                return watched
            time.sleep(1)
        return watched

    def _examples(self) -> None:
        since = datetime.now(timezone.utc)
        analytics = self.work / "analytics"
        runs = {
            "braze_send_id_pipeline": self.trigger(
                "braze_send_id_pipeline",
                {
                    "audience_size": 3000,
                    "analytics_wait_seconds": 20,
                    "analytics_path": f"file://{analytics}",
                },
            ),
            "braze_content_experiment": self.trigger(
                "braze_content_experiment",
                {
                    "audience_size": 2000,
                    "analytics_wait_seconds": 20,
                    "output_path": f"file://{self.work / 'experiments'}",
                },
            ),
            "braze_send_with_asset": self.trigger("braze_send_with_asset", {}),
            "braze_triggered_and_scheduled": self.trigger("braze_triggered_and_scheduled", {}),
        }
        watched = self.watch(runs, 300, asset_consumer="braze_analytics_on_send", since=since)
        for dag_id, (run_id, state) in sorted(watched.items()):
            failed = [] if state == "success" else self._failed_tasks(dag_id, run_id)
            self.check(
                f"run {dag_id}",
                state == "success",
                f"{run_id}: {state}{'; ' + '; '.join(failed) if failed else ''}",
                self._log("scheduler"),
            )
        if "braze_analytics_on_send" not in watched:
            self.check(
                "run braze_analytics_on_send",
                False,
                "the asset event from braze_send_with_asset started no run",
                self._log("scheduler"),
            )
        ledger = _http(
            "GET", f"{self.sandbox_url}/_sandbox/ledger?endpoint={urllib.parse.quote(SEND_ENDPOINT)}"
        )
        expectations = {
            "braze_send_id_pipeline": (
                [("create_send_id", "return_value")],
                [f"example-user-{n:06d}" for n in range(3000)],
            ),
            "braze_send_with_asset": (
                [("create_send_id", "return_value")],
                [f"example-user-{n:04d}" for n in range(250)],
            ),
            "braze_content_experiment": (
                [("generate_variants", "return_value")],
                [f"example-user-{n:06d}" for n in range(2000)],
            ),
        }
        for dag_id, (sources, expected) in expectations.items():
            run_id = runs[dag_id]
            try:
                send_ids = []
                for task_id, key in sources:
                    value = self.xcom(dag_id, run_id, task_id, key)
                    send_ids += [v["send_id"] for v in value.values()] if isinstance(value, dict) else [value]
            except (urllib.error.HTTPError, KeyError, TypeError) as err:
                self.check(
                    f"exactly once {dag_id}",
                    False,
                    f"cannot read the run's send IDs from XCom: {err}",
                    self._task_logs(dag_id),
                )
                continue
            delivery = check_delivery(ledger_counts(ledger, send_ids), expected)
            self.check(
                f"exactly once {dag_id}",
                delivery.ok and delivery.delivered_once == len(expected),
                f"send ID(s) {', '.join(send_ids)}: {delivery.describe()} of {len(expected)}",
                self._task_logs(dag_id),
            )
        for dag_id in ("braze_send_id_pipeline", "braze_content_experiment"):
            seen = self.deferred_seen.get((dag_id, "wait_for_analytics"), set())
            self.check(
                f"sensor deferred {dag_id}",
                "deferred" in seen,
                "wait_for_analytics states seen: "
                + (", ".join(sorted(s for s in seen if s != "None")) or "none"),
                self._log("triggerer"),
            )

    def _failed_tasks(self, dag_id: str, run_id: str) -> list[str]:
        return [
            f"{ti['task_id']}{'[' + str(ti['map_index']) + ']' if ti['map_index'] >= 0 else ''} {ti['state']}"
            for ti in self.task_instances(dag_id, run_id)
            if ti["state"] not in ("success", "skipped")
        ]

    # ------------------------------------------------------------------ the sharded send (Celery)

    def _worker_of(self, ti_id: str, table: dict[int, tuple[int, str]]) -> str | None:
        """Which worker's process tree runs the task instance (its task runner's title names it)."""
        for name, component in self.deployment.components.items():
            if not name.startswith("worker"):
                continue
            for pid in descendants(component.pid, table):
                if ti_id in table[pid][1]:
                    return name
        return None

    def _sharded_send(self) -> None:
        dag_id = "braze_sharded_send"
        before = _http("GET", f"{self.sandbox_url}/_sandbox/statuses")
        sent_before = sum(v for k, v in before.get("/messages/send", {}).items() if k.startswith("2"))
        run_id = self.trigger(
            dag_id, {"audience_size": SHARDED_AUDIENCE, "output_path": f"file://{self.work / 'shards'}"}
        )
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        killed: str | None = None
        killed_tis: list[int] = []
        kill_time = 0.0
        restarted = False
        deadline = time.monotonic() + 420
        state = "queued"
        while time.monotonic() < deadline:
            self.alive_or_fail()
            tis = self.task_instances(dag_id, run_id)
            table = _processes()
            for ti in tis:
                if ti["task_id"] == "send_shard" and ti["state"] == "running":
                    worker = self._worker_of(ti["id"], table)
                    if worker:
                        self.ti_workers[(ti["task_id"], ti["map_index"], ti["try_number"])] = worker
            if killed is None:
                statuses = _http("GET", f"{self.sandbox_url}/_sandbox/statuses")
                sent = (
                    sum(v for k, v in statuses.get("/messages/send", {}).items() if k.startswith("2"))
                    - sent_before
                )
                running = [ti for ti in tis if ti["task_id"] == "send_shard" and ti["state"] == "running"]
                if sent >= KILL_AFTER_REQUESTS and running:
                    per_worker = Counter(
                        self.ti_workers.get(("send_shard", ti["map_index"], ti["try_number"]))
                        for ti in running
                    )
                    per_worker.pop(None, None)
                    if per_worker:
                        killed = per_worker.most_common(1)[0][0]
                        assert killed is not None
                        killed_tis = [
                            ti["map_index"]
                            for ti in running
                            if self.ti_workers.get(("send_shard", ti["map_index"], ti["try_number"]))
                            == killed
                        ]
                        self.say(
                            f"{sent} send requests accepted: SIGKILL to {killed}'s process group "
                            f"(running send_shard {killed_tis})"
                        )
                        self.deployment.stop(killed, sig=signal.SIGKILL, timeout=10)
                        kill_time = time.monotonic()
            elif not restarted and time.monotonic() - kill_time > 5:
                self._start_worker(int(killed[-1]))
                restarted = True
                self.say(f"{killed} started again")
            state = str(self.api("GET", path)["state"])
            if state in ("success", "failed") and (killed is None or restarted):
                break
            time.sleep(1)
        self.say(f"{dag_id} {run_id}: {state}")
        self._check_shards(dag_id, run_id, state, killed, killed_tis, before)

    def _check_shards(
        self, dag_id: str, run_id: str, state: str, killed: str | None, killed_tis: list[int], before: Any
    ) -> None:
        if killed is None:
            self.check(
                "worker killed mid-send",
                False,
                f"no send_shard was seen running after {KILL_AFTER_REQUESTS} requests (run {state})",
                self._log("worker1"),
            )
            return
        tis = {
            ti["map_index"]: ti for ti in self.task_instances(dag_id, run_id) if ti["task_id"] == "send_shard"
        }
        summaries = {i: self.xcom(dag_id, run_id, "send_shard", "summary", i) for i in tis}
        send_id = self.xcom(dag_id, run_id, "create_send_id")
        variants = self.xcom(dag_id, run_id, "shard_audience", "variants")
        audience: list[str] = []
        in_doubt: set[str] = set()
        for index, variant in enumerate(variants):
            shard = [
                json.loads(line)
                for line in Path(urllib.parse.urlsplit(variant["recipients"]).path).read_text().splitlines()
            ]
            audience += shard
            in_doubt |= batch_recipients(shard, (summaries[index] or {}).get("in_doubt_ranges") or [])
        ledger = _http(
            "GET", f"{self.sandbox_url}/_sandbox/ledger?endpoint={urllib.parse.quote(SEND_ENDPOINT)}"
        )
        counts = ledger_counts(ledger, [send_id])
        delivery = check_delivery(counts, audience, in_doubt)
        self.check(
            "sharded send: every recipient exactly once or reported in doubt",
            delivery.ok and len(audience) == SHARDED_AUDIENCE,
            f"send ID {send_id}, {len(audience)} recipients in {len(variants)} shards: {delivery.describe()}",
            self._task_logs(dag_id),
        )
        # The shards: the killed ones retried (try 2) and resumed; the others succeeded.
        lines = []
        ok = True
        for index, ti in sorted(tis.items()):
            summary = summaries[index] or {}
            worker = self.ti_workers.get(("send_shard", index, ti["try_number"]), "?")
            first = self.ti_workers.get(("send_shard", index, 1), "?")
            if index in killed_tis:
                resumed = (summary.get("skipped_already_sent") or 0) > 0 and ti["try_number"] >= 2
                only_doubt = ti["state"] == "success" or (
                    summary.get("not_sent") == 0 and (summary.get("in_doubt") or 0) > 0
                )
                ok &= resumed and only_doubt
                log_note = self._resume_line(dag_id, run_id, index, ti["try_number"])
                lines.append(
                    f"shard {index} (killed on {first}): try {ti['try_number']} on {worker} "
                    f"{ti['state']}, skipped {summary.get('skipped_already_sent')} already sent, "
                    f"{summary.get('accepted')} accepted, {summary.get('in_doubt')} in doubt, "
                    f"{summary.get('not_sent')} not sent; log: {log_note}"
                )
            else:
                ok &= ti["state"] == "success"
                lines.append(f"shard {index} on {worker}: {ti['state']}, {summary.get('accepted')} accepted")
        # A try killed outright leaves its reserved batches in doubt: never resent, so the retried
        # shard ends failed, naming them (docs/delivery.md), and so does the run.
        note = f"run {state}" + (
            ": a killed try's batches in doubt are reported, not resent" if state == "failed" else ""
        )
        self.check(
            "sharded send: killed shard resumed from its checkpoint, the others succeeded",
            ok,
            f"{note}; " + "; ".join(lines),
            self._log("scheduler"),
        )
        statuses = _http("GET", f"{self.sandbox_url}/_sandbox/statuses")
        limited, total = share_429(statuses, before, "/messages/send")
        self.check(
            "sharded send: under 1 % of answers 429",
            total > 0 and limited / total < 0.01,
            f"{limited} of {total} answers ({100 * limited / max(total, 1):.2f} %)",
            self._task_logs(dag_id),
        )
        times = [
            datetime.fromisoformat(e["at"]).timestamp()
            for e in ledger
            if (e.get("request") or {}).get("send_id") == send_id
        ]
        figures = throughput(times, *SHARED_LIMIT)
        self.say(
            f"sharded send throughput: {int(figures['requests'])} requests in {figures['seconds']:.1f} s = "
            f"{figures['ratio']:.2f} x the limit ({SHARED_LIMIT[0]}/{SHARED_LIMIT[1]} s); "
            "without pauses over 5 s "
            f"({figures['active_seconds']:.1f} s): {figures['active_ratio']:.2f} x"
        )
        self.check(
            "sharded send: throughput against the sandbox's limit",
            figures["active_ratio"] > 0.5,
            f"{figures['ratio']:.2f} x overall, {figures['active_ratio']:.2f} x while sending",
            self._task_logs(dag_id),
        )

    def _resume_line(self, dag_id: str, run_id: str, index: int, try_number: int) -> str:
        run = urllib.parse.quote(run_id, safe="")
        path = f"/dags/{dag_id}/dagRuns/{run}/taskInstances/send_shard/logs/{try_number}"
        try:
            content = self.api("GET", path, map_index=index, full_content="true")["content"]
        except (urllib.error.HTTPError, KeyError) as err:
            return f"unreadable ({err})"
        text = json.dumps(content)
        match = re.search(r"Resuming the send from[^\"]*?to send\.", text)
        return match[0] if match else "no 'Resuming the send' line"

    # ------------------------------------------------------------------ logs and processes

    def _log_files(self) -> Iterator[Path]:
        for folder in (self.home / "logs", self.work / "logs"):
            if folder.exists():
                yield from (p for p in folder.rglob("*") if p.is_file())

    def _log_checks(self) -> None:
        forms = secret_forms(self.api_key)
        leaked, blocked = [], []
        files = list(self._log_files())
        triggers = 0
        trigger_logs: list[str] = []
        for path in files:
            text = path.read_text(errors="replace")
            if path == self._log("sandbox"):
                text = without_announcement(text)  # the sandbox prints the key it issues, on purpose
            if leaks(text, forms):
                leaked.append(str(path))
            blocked += [f"{path}: {line}" for line in blocked_loop_lines(text)]
            if ".log.trigger." in path.name:
                triggers += text.count(") starting")
                trigger_logs.append(text)
        self.check(
            "no API key in any log",
            not leaked,
            f"{len(files)} files (task, trigger and component logs) searched for the key, base64 and "
            "URL-encoded"
            if not leaked
            else f"found in {', '.join(leaked)}",
            leaked[0] if leaked else None,
        )
        outside = blocks_outside_first_start(blocked, first_start_window(trigger_logs))
        if not blocked:
            detail = f"{triggers} trigger runs, no 'badly-written trigger' / 'was blocked' warning"
        elif not outside:
            detail = (
                f"{triggers} trigger runs; {len(blocked)} warning(s), all during the triggerer's start-up "
                f"of its first trigger (whose own set-up runs in a worker thread): {blocked[0][:300]}"
            )
        else:
            detail = (
                f"{len(outside)} warning(s) outside the first trigger's start-up, first: {outside[0][:400]}"
            )
        ok = triggers > 0 and not outside
        self.check("triggerer loop never blocked", ok, detail, self._log("triggerer"))

    def _listener_check(self) -> None:
        table = _processes()
        pids = [
            pid for c in self.deployment.components.values() for pid in (c.pid, *descendants(c.pid, table))
        ]
        listeners = listeners_of(pids)
        wide = [
            f"{table.get(pid, (0, '?'))[1][:60]} on {address}:{port}"
            for pid, address, port in listeners
            if address not in ("127.0.0.1", "::1")
        ]
        self.check(
            "every component listens on loopback only",
            not wide,
            f"{len(listeners)} listening sockets, all on 127.0.0.1" if not wide else "; ".join(wide),
        )

    def _after_stop(self, ports: dict[str, int]) -> None:
        time.sleep(0.5)
        left = [f"{name} port {port}" for name, port in ports.items() if port_in_use(port)]
        self.check(
            "every process stopped, no port left listening",
            not left,
            f"ports {', '.join(f'{n} {p}' for n, p in ports.items())} free"
            if not left
            else "still listening: " + ", ".join(left),
        )
        if self.pg_dir is not None:
            shutil.rmtree(self.pg_dir, ignore_errors=True)

    def _summary(self) -> int:
        failed = [r for r in self.results if not r.ok]
        took = time.monotonic() - self.started
        if failed:
            print(
                f"\n{self.command}: FAIL ({len(failed)} of "
                f"{len(self.results)} checks failed, {took:.0f} s). Logs: {self.work / 'logs'}, task logs: "
                f"{self.home / 'logs'}.",
                flush=True,
            )
            return 1
        print(
            f"\n{self.command}: PASS (all {len(self.results)} checks, {took:.0f} s).",
            flush=True,
        )
        return 0


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Run the example DAGs in a loopback Airflow deployment and check them."
    )
    parser.add_argument("--executor", choices=("local", "celery"), default="local")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    work = WORK / arguments.executor
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    checker = Checker(arguments.executor, work, keep=False)
    try:
        return checker.run()
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; every process it started was stopped.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
