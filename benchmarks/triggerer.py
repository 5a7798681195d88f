"""The triggerer with many deferred SendAnalyticsSensors: the async trigger beside one in threads.

1,000 SendAnalyticsTriggers run in one asyncio event loop, as Airflow's triggerer runs them
(each ``run()`` iterated in its own task), against the Braze sandbox in its own process, which
answers every request after 2 s; then again with 10 % of the answers 503. Their sends reach
``min_age`` at staggered times (evenly over 15 to 45 s after the start; the first 15 s let the
burst of first checks every trigger makes at once drain). Each trigger's send exists and has
analytics, so the check at ``min_age`` succeeds and the trigger ends.

Measured, each implementation in a fresh process of its own:

- the event loop's longest block: a monitor sleeps 0.01 s in a loop and records how late it
  wakes; Airflow's triggerer's own watchdog (sleeps 0.1 s, warns past 0.2 s), its warnings
  counted; single callbacks that ran 0.2 s or more (asyncio's ``slow_callback_duration`` check,
  timed without the rest of debug mode; ``--asyncio-debug`` runs in debug mode instead); and the
  process's full garbage collections, which stop the loop whatever the triggers do;
- the process's peak RSS;
- the delay from a send reaching ``min_age`` to the first check of it that reaches the sandbox
  (the sandbox's process records when each ``GET /sends/data_series`` arrives); a send still
  unchecked when the run ends (10 s after the last ``min_age``) counts as missed.

"thread" is the trigger as first drafted (the synchronous hook in ``asyncio.to_thread``, copied
below as :class:`ThreadSendAnalyticsTrigger`); "async" is today's (``BrazeAsyncHook``). Goals:
no block of 0.2 s or more, 99 % of first checks within 5 s.

    python benchmarks/triggerer.py [--triggers 1000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import connection, machine, quiet_airflow, sandbox

from airflow_provider_braze.triggers.send_analytics import SendAnalyticsTrigger, _event

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow.triggers.base import TriggerEvent

CAMPAIGN = "sandbox-api-campaign"
MIN_AGE = 3600.0
SLOW = 0.2  # Airflow's triggerer warns of a trigger that blocks its loop this long
GOAL_DELAY = 5.0
SCENARIOS = {
    "2 s answers": {"latency_ms": 2000},
    "2 s answers, 10 % 503": {"latency_ms": 2000, "server_error": 0.1, "server_error_statuses": [503]},
}


class ThreadSendAnalyticsTrigger(SendAnalyticsTrigger):
    """The trigger as first drafted: the synchronous hook run through ``asyncio.to_thread``,
    so each check holds one of the default executor's threads (``min(32, cores + 4)``)."""

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_braze import analytics_check as check
        from airflow_provider_braze.exceptions import (
            BrazeAnalyticsUnavailableError,
            BrazeAnalyticsUntrackedError,
            BrazeRateLimitError,
            BrazeServerError,
            BrazeTransportError,
        )
        from airflow_provider_braze.hooks.braze import BrazeHook

        hook = BrazeHook(braze_conn_id=self.braze_conn_id)
        end_at = datetime.fromisoformat(self.end_at)
        old_enough = check.old_enough_at(
            datetime.fromisoformat(self.sent_at) if self.sent_at else None,
            timedelta(seconds=self.min_age_seconds) if self.min_age_seconds is not None else None,
        )
        summary: dict[str, Any] | None = None
        try:
            while True:
                failure = None
                try:
                    done, summary = await asyncio.to_thread(self._check_sync, hook)
                except BrazeAnalyticsUnavailableError as err:
                    untracked = isinstance(err, BrazeAnalyticsUntrackedError)
                    yield _event({"status": "unavailable", "message": str(err), "untracked": untracked})
                    return
                except (BrazeTransportError, BrazeServerError, BrazeRateLimitError) as err:
                    failure = str(hook.redact(f"{type(err).__name__}: {err}"))
                    self.log.warning("Checking Braze failed for now (%s); trying again later.", failure)
                    done = False
                except Exception as err:
                    yield _event(
                        {"status": "error", "message": str(hook.redact(f"{type(err).__name__}: {err}"))}
                    )
                    return
                if done:
                    yield _event({"status": "done", "summary": summary})
                    return
                now = check._utcnow()
                left = (end_at - now).total_seconds()
                if left <= 0:
                    yield _event({"status": "timeout", "summary": summary, "message": failure})
                    return
                wait = min(check.next_check_in(self.poke_interval, old_enough, now), left)
                self.log.info("Checking again in %.0f s.", wait)
                await asyncio.sleep(wait)
        finally:
            hook.close()

    def _check_sync(self, hook: Any) -> tuple[bool, dict[str, Any]]:
        from airflow_provider_braze.analytics_check import DEFAULT_NO_DATA_GRACE, check_send_analytics

        return check_send_analytics(
            hook,
            campaign_id=self.campaign_id,
            send_id=self.send_id,
            length=self.length,
            min_sent=self.min_sent,
            min_age=timedelta(seconds=self.min_age_seconds) if self.min_age_seconds is not None else None,
            sent_at=datetime.fromisoformat(self.sent_at) if self.sent_at else None,
            log=self.log,
            broadcast=self.broadcast,
            no_data_grace=(
                timedelta(seconds=self.no_data_grace_seconds)
                if self.no_data_grace_seconds is not None
                else DEFAULT_NO_DATA_GRACE
            ),
        )


VARIANTS = {"thread": ThreadSendAnalyticsTrigger, "async": SendAnalyticsTrigger}


# ------------------------------------------------------------------------------- the sandbox


def serve_sandbox(arrivals: str, argv: list[str]) -> None:
    """The sandbox's CLI, recording when each ``GET /sends/data_series`` arrives (before its
    injected latency) and for which send ID, one line each in ``arrivals``."""
    from urllib.parse import parse_qs

    from airflow_provider_braze.sandbox import __main__ as cli
    from airflow_provider_braze.sandbox import app as sandbox_app

    create = sandbox_app.create_app
    out = open(arrivals, "a", buffering=1)  # noqa: SIM115 - open for the server's lifetime

    def create_app(state: Any) -> Any:
        inner = create(state)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"] == "/sends/data_series":
                query = parse_qs(scope["query_string"].decode())
                key = f"{query.get('send_id', [''])[0]}/{query.get('length', [''])[0]}"
                out.write(f"{time.time():.6f} {key}\n")
            await inner(scope, receive, send)

        return app

    sandbox_app.create_app = create_app  # type: ignore[assignment]
    cli.main(argv)


#: Triggers per send: each reads its own number of days (``length``), so each trigger's checks
#: are told apart at the sandbox while there are fewer sends to make.
PER_SEND = 10


def trigger_key(number: int) -> tuple[str, int]:
    """The send ID and ``length`` of trigger ``number``."""
    return f"bench-send-{number // PER_SEND:05d}", number % PER_SEND + 1


def make_sends(count: int) -> None:
    """``count`` send IDs, each with one message sent, so each has analytics."""
    from airflow_provider_braze.hooks.braze import BrazeHook
    from airflow_provider_braze.sandbox import email_message

    hook = BrazeHook()
    for number in range(count):
        send_id = f"bench-send-{number:05d}"
        hook.create_send_id(CAMPAIGN, send_id)
        hook.send_messages(
            CAMPAIGN, send_id=send_id, external_user_ids=["bench-user"], messages=email_message()
        )
    hook.close()


def set_faults(info: dict[str, Any], faults: dict[str, Any]) -> None:
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{info['url']}/_sandbox/faults",
        data=json.dumps(faults).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request) as answer:  # noqa: S310 - loopback
        answer.read()


# ------------------------------------------------------------------------------- one run


def run_triggers(
    variant: str, count: int, first: float, last: float, grace: float, arrivals: str, debug: bool = False
) -> dict[str, Any]:
    """In this process: ``count`` triggers of ``variant`` in one event loop; the figures."""
    trigger_class = VARIANTS[variant]
    slow_warnings = []

    class Counter(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "Executing" in record.getMessage():
                slow_warnings.append(record.getMessage())

    logging.getLogger("asyncio").addHandler(Counter(logging.WARNING))
    start = time.time() + 1.0
    ready = [start + first + (last - first) * n / max(1, count - 1) for n in range(count)]
    triggers = [
        trigger_class(
            campaign_id=CAMPAIGN,
            send_id=trigger_key(n)[0],
            length=trigger_key(n)[1],
            min_sent=None,
            min_age_seconds=MIN_AGE,
            sent_at=datetime.fromtimestamp(ready[n] - MIN_AGE, tz=timezone.utc).isoformat(),
            poke_interval=600.0,
            end_at=datetime.fromtimestamp(start + 3600, tz=timezone.utc).isoformat(),
            braze_conn_id="braze_default",
        )
        for n in range(count)
    ]
    lateness: list[float] = []
    blocks_at: list[tuple[float, float]] = []
    airflow_warnings: list[float] = []
    events: dict[str, int] = {}

    async def watchdog() -> None:
        # Airflow's triggerer's own (TriggerRunner.block_watchdog): sleep 0.1 s, warn past 0.2 s.
        while True:
            last_run = time.monotonic()
            await asyncio.sleep(0.1)
            if time.monotonic() - last_run > SLOW:
                airflow_warnings.append(time.monotonic() - last_run)

    async def monitor() -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            lateness.append(loop.time() - before - 0.01)
            if lateness[-1] >= SLOW:
                blocks_at.append((round(time.time() - start, 2), round(lateness[-1], 3)))

    async def run_trigger(trigger: SendAnalyticsTrigger) -> None:
        # As Airflow's TriggerRunner: iterate run() and take its first event.
        async for event in trigger.run():
            status = str(event.payload.get("status"))
            events[status] = events.get(status, 0) + 1
            return

    async def main() -> None:
        watcher = asyncio.gather(monitor(), watchdog())
        await asyncio.sleep(max(0.0, start - time.time()))
        tasks = [asyncio.create_task(run_trigger(t)) for t in triggers]
        await asyncio.sleep(max(0.0, start + last + grace - time.time()))
        for task in (*tasks, watcher):
            task.cancel()
        await asyncio.gather(*tasks, watcher, return_exceptions=True)

    gc_pauses: list[float] = []
    gc_started: list[float] = [0.0]

    def gc_watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif info["generation"] == 2:
            gc_pauses.append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(gc_watch)
    loop = asyncio.new_event_loop()
    if debug:
        loop.set_debug(True)
        loop.slow_callback_duration = SLOW
    else:
        # asyncio's slow-callback check (what debug mode's slow_callback_duration does: time each
        # callback) without the rest of debug mode, whose traceback capture on every callback
        # by itself saturates a loop of a thousand triggers.
        run = asyncio.events.Handle._run

        def timed(handle: asyncio.Handle) -> None:
            began = time.perf_counter()
            run(handle)
            if time.perf_counter() - began >= SLOW:
                slow_warnings.append(repr(handle))

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    loop.run_until_complete(main())
    gc.callbacks.remove(gc_watch)

    arrivals_by_send: dict[str, list[float]] = {}
    for line in Path(arrivals).read_text().splitlines():
        at, _, send_id = line.partition(" ")
        arrivals_by_send.setdefault(send_id, []).append(float(at))
    delays = []
    for n in range(count):
        send_id, length = trigger_key(n)
        after = [t for t in arrivals_by_send.get(f"{send_id}/{length}", []) if t >= ready[n]]
        delays.append(min(after) - ready[n] if after else float("inf"))
    return {
        "variant": variant,
        "block_max": max(lateness, default=0.0),
        "blocks_over": sum(1 for late in lateness if late >= SLOW),
        "slow_warnings": len(slow_warnings),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "delays": delays,
        "events": events,
        "requests": sum(len(v) for v in arrivals_by_send.values()),
        "blocks_at": blocks_at[:20],
        "airflow_warnings": len(airflow_warnings),
        "gc_pauses": len(gc_pauses),
        "gc_pause_max": max(gc_pauses, default=0.0),
    }


def child(args: argparse.Namespace) -> None:
    quiet_airflow(tempfile.mkdtemp(prefix="braze-bench-airflow-"))
    result = run_triggers(
        args.child, args.triggers, args.first, args.last, args.grace, args.arrivals, args.asyncio_debug
    )
    print("RESULT " + json.dumps(result), flush=True)
    # The thread trigger's threads may still be queued with checks: do not wait for them.
    os._exit(0)


# ------------------------------------------------------------------------------- the report


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def seconds(value: float) -> str:
    return "missed" if value == float("inf") else f"{value:.2f} s"


def row(scenario: str, result: dict[str, Any]) -> str:
    delays = result["delays"]
    within = sum(1 for d in delays if d <= GOAL_DELAY) / len(delays)
    return (
        f"| {scenario} | {result['variant']} | {result['block_max']:.3f} s | {result['blocks_over']} | "
        f"{result['airflow_warnings']} | {result['slow_warnings']} | "
        f"{result['gc_pauses']} ({result['gc_pause_max']:.2f} s) | {result['rss_mb']:.0f} MB | "
        f"{seconds(statistics.median(delays))} | {seconds(percentile(delays, 0.99))} | "
        f"{seconds(max(delays))} | {within:.1%} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="20 triggers, 0.2 s answers, a few seconds")
    parser.add_argument(
        "--asyncio-debug",
        action="store_true",
        help="run the loop in asyncio's debug mode (slow_callback_duration 0.2 s); its traceback "
        "capture on every callback costs more than the triggers themselves",
    )
    parser.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--arrivals", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=float, default=15.0, help=argparse.SUPPRESS)
    parser.add_argument("--last", type=float, default=45.0, help=argparse.SUPPRESS)
    parser.add_argument("--grace", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--serve-sandbox", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.serve_sandbox:
        serve_sandbox(args.serve_sandbox, rest)
        return 0
    if args.child:
        child(args)
        return 0
    count, scenarios, timing = args.triggers, SCENARIOS, ["--first", "15", "--last", "45", "--grace", "10"]
    if args.quick:
        count, timing = 20, ["--first", "2", "--last", "4", "--grace", "2"]
        scenarios = {"0.2 s answers": {"latency_ms": 200}}
    home = tempfile.mkdtemp(prefix="braze-bench-airflow-")
    quiet_airflow(home)
    arrivals = Path(home) / "arrivals.txt"
    arrivals.touch()
    here = str(Path(__file__).resolve())
    launcher = [sys.executable, here, "--serve-sandbox", str(arrivals)]
    results = []
    # Limits that do not slow the setting up of the sends (the pacer spreads a window's requests).
    limits = ["--rate-limit", "send_id=1000000/60", "--rate-limit", "shared=1000000/60"]
    with sandbox(*limits, launcher=launcher) as info:
        os.environ["AIRFLOW_CONN_BRAZE_DEFAULT"] = connection(info)
        make_sends(-(-count // PER_SEND))
        for scenario, faults in scenarios.items():
            set_faults(info, faults)
            for variant in ("thread", "async"):
                arrivals.write_text("")
                command = [sys.executable, here, "--child", variant, "--triggers", str(count)]
                command += ["--arrivals", str(arrivals), *timing]
                if args.asyncio_debug:
                    command.append("--asyncio-debug")
                done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
                lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
                if not lines:
                    print(done.stdout[-2000:], done.stderr[-3000:], file=sys.stderr)
                    return 1
                results.append((scenario, json.loads(lines[-1][len("RESULT ") :])))
    print(f"triggerer: {count} SendAnalyticsTriggers in one event loop, min_age reached evenly over the run")
    print(machine())
    print(
        "| answers | trigger | longest loop block | blocks >= 0.2 s | Airflow watchdog warnings | "
        "callbacks >= 0.2 s | full GCs (longest) | peak RSS | first check after min_age: p50 | p99 | "
        "max | within 5 s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for scenario, result in results:
        print(row(scenario, result))
    for scenario, result in results:
        print(
            f"{scenario}, {result['variant']}: events {result['events']}, {result['requests']} checks; "
            f"blocks >= 0.2 s at (s from start, s): {result['blocks_at']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
