"""Run the two example DAGs with `airflow dags test` against a local Braze sandbox: the send ID
pipeline, then the content experiment.

Used by scripts/demo (``--pipeline`` or ``--experiment`` runs only that one). Everything happens
under .demo/, so it never touches a real Airflow installation or a real Braze workspace: the
Airflow home and the runs' logs are rebuilt each time; the analytics CSVs of earlier runs are
kept in .demo/analytics/, the experiments' files (variants, comparison table, chart) in
.demo/experiments/. The provider's task log lines are relayed as "level  message" (no timestamps
or logger paths), wrapped, never cut.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".demo"
DAG_ID = "braze_send_id_pipeline"
EXPERIMENT_DAG_ID = "braze_content_experiment"
WIDTH = 100

#: A structured task log line: `2026-11-26T20:39:53.279430Z [info     ] Message [logger] loc=f.py:1`.
_LOG_LINE = re.compile(
    r"^\S+Z \[(?P<level>\w+)\s*\] (?P<message>.*?)(?: \[(?P<logger>[^\]\s]+)\](?: \S+=\S*)*)?\s*$"
)
#: The last line of a Python traceback: ``SomeError: what happened``.
_EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Warning)\b(?::.*)?$"
)
#: Loggers whose lines the demo shows besides warnings and errors: this provider's.
_OURS = "airflow_provider_braze"


def relay_lines(output: str) -> list[str]:
    """What the demo shows of ``airflow dags test`` output: the provider's log lines, every
    warning and error, and the summaries the example's tasks print (a ``Braze ...`` line and the
    indented lines right under it); as ``level  message``, wrapped to WIDTH columns without
    cutting a word. Airflow's "Returned value was" repeats are left out, and a provider log line
    that a printed summary repeats is shown once, in the summary (with its heading)."""
    lines = [raw.rstrip() for raw in output.splitlines()]
    in_summaries = {line.strip() for line in _summary_lines(lines)}
    shown: list[str] = []
    seen: set[str] = set()
    in_summary = False
    for line in lines:
        match = _LOG_LINE.match(line)
        if match is None:
            if line.startswith("Braze ") or (in_summary and line.startswith("  ")):
                in_summary = True
                if line.strip() not in seen:
                    seen.add(line.strip())
                    shown += _wrap("    ", line)
            else:
                in_summary = False
            continue
        in_summary = False
        level, message, logger = match["level"].lower(), match["message"], match["logger"] or ""
        if message.startswith("Done. Returned value was"):
            continue
        if level == "info" and message.strip() in in_summaries:
            continue  # the summary printed below shows it, under its heading
        # The provider's lines at every level; other components' only when something failed
        # (their warnings about this machine, e.g. a missing graphviz, stay in the full log).
        if _OURS in logger or level in ("error", "critical"):
            shown += _wrap(f"    {level:<8}", message)
    return shown


def _summary_lines(lines: list[str]) -> list[str]:
    """The indented lines of the summaries the example's tasks print (under a ``Braze ...`` line)."""
    found, in_summary = [], False
    for line in lines:
        printed = _LOG_LINE.match(line) is None
        if printed and line.startswith("Braze "):
            in_summary = True
        elif printed and in_summary and line.startswith("  "):
            found.append(line)
        else:
            in_summary = False
    return found


def failure_reason(output: str) -> str | None:
    """The last exception line of a failed run's log (``FileExistsError: [Errno 17] ...``)."""
    reasons = [line.strip() for line in output.splitlines() if _EXCEPTION_LINE.match(line.strip())]
    return reasons[-1][:300] if reasons else None


def _wrap(prefix: str, message: str) -> list[str]:
    """``message`` after ``prefix``, wrapped at WIDTH; continuation lines indented; a word longer
    than the line (a path, a URL) is kept whole."""
    lead = len(message) - len(message.lstrip())
    return textwrap.wrap(
        message.strip(),
        width=WIDTH,
        initial_indent=prefix + " " * lead,
        subsequent_indent=" " * (len(prefix) + lead + 2),
        break_long_words=False,
        break_on_hyphens=False,
    )


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """``--pipeline`` or ``--experiment`` (only that example); neither: both."""
    parser = argparse.ArgumentParser(
        prog="scripts/demo",
        description="Run the example DAGs with `airflow dags test` against the local Braze sandbox.",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--pipeline", action="store_true", help="only the send ID pipeline")
    only.add_argument("--experiment", action="store_true", help="only the content experiment")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from airflow_provider_braze.sandbox import BrazeSandbox

    arguments = parse_arguments([] if argv is None else argv)
    run_pipeline, run_experiment = not arguments.experiment, not arguments.pipeline

    analytics = WORK / "analytics"
    for folder in (analytics, WORK / "experiments"):
        if folder.exists() and not folder.is_dir():
            return _failed(
                f"{folder} is not a folder (the demo keeps its results there); remove it and rerun."
            )
    earlier = sorted(analytics.glob("*.csv")) if analytics.exists() else []
    for name in ("airflow-home", "dags-test.log", "experiment.log"):
        target = WORK / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    home = WORK / "airflow-home"
    home.mkdir(parents=True)
    if earlier:
        print(f"==> keeping {len(earlier)} earlier analytics file(s) in {analytics}", flush=True)
    airflow = str(Path(sys.executable).parent / "airflow")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
    }

    print("==> creating the Airflow metadata database (SQLite, in .demo/)", flush=True)
    migrate_log = WORK / "db-migrate.log"
    with migrate_log.open("w") as log:
        migrate = subprocess.run(
            [airflow, "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if migrate.returncode != 0:
        print(
            f"scripts/demo: 'airflow db migrate' failed (exit {migrate.returncode}); see {migrate_log}.",
            file=sys.stderr,
        )
        return 1

    experiments = WORK / "experiments"
    with BrazeSandbox(api_key=f"sandbox-demo-{secrets.token_hex(12)}") as sandbox:
        print(f"==> Braze sandbox listening on {sandbox.url}", flush=True)
        env["AIRFLOW_CONN_BRAZE_DEFAULT"] = sandbox.connection_json()
        if run_pipeline:
            failed = _pipeline(airflow, env, sandbox, analytics, earlier)
            if failed is not None:
                return _failed(failed)
        if not run_experiment:
            return 0
        experiment_log = WORK / "experiment.log"
        conf = {"output_path": f"file://{experiments}"}
        experiment = _dags_test(airflow, env, EXPERIMENT_DAG_ID, conf, experiment_log)
        if experiment.returncode != 0:
            return _failed(_run_failed("the content experiment", experiment.returncode, experiment_log))
    tables = sorted(experiments.rglob("comparison.csv"), key=lambda p: p.stat().st_mtime)
    _say(
        "Content experiment succeeded: three email variants, each under its own send ID, compared "
        "with the control; the verdicts are above."
    )
    print(f"Comparison table and chart: {tables[-1].parent if tables else 'not written'}")
    print(f"Full log: {experiment_log}")
    return 0


def _pipeline(
    airflow: str, env: dict[str, str], sandbox: Any, analytics: Path, earlier: list[Path]
) -> str | None:
    """Run the send ID pipeline and print what it did; None, or why it failed."""
    log_path = WORK / "dags-test.log"
    run = _dags_test(airflow, env, DAG_ID, {"analytics_path": f"file://{analytics}"}, log_path)
    if run.returncode != 0:
        return _run_failed("the example pipeline", run.returncode, log_path)
    with urllib.request.urlopen(f"{sandbox.url}/_sandbox/ledger") as answer:  # noqa: S310 - loopback
        ledger = json.load(answer)
    deliveries = sandbox.state.deliveries()
    created = [e for e in ledger if e["endpoint"] == "POST /sends/id/create"]
    if len(created) != 1:
        return f"expected one created send ID, the sandbox recorded {len(created)}; see {log_path}."
    entry = created[0]
    sends = [e for e in ledger if e["endpoint"] == "POST /messages/send"]
    new = sorted(set(analytics.glob("*.csv")) - set(earlier))
    _say(
        f"Example pipeline succeeded. Created send ID: {entry['response']['send_id']} "
        f"(campaign {entry['request']['campaign_id']}); the sandbox received {len(sends)} send "
        f"requests for {len(deliveries)} distinct recipients, {sum(deliveries.values())} messages "
        "in all."
    )
    print(f"Analytics rows: {', '.join(str(p) for p in new) or 'none written'}")
    print(f"Full log: {log_path}")
    return None


def _say(text: str) -> None:
    print("\n" + "\n".join(textwrap.wrap(text, width=WIDTH, break_long_words=False, break_on_hyphens=False)))


def _run_failed(what: str, code: int, log_path: Path) -> str:
    reason = failure_reason(log_path.read_text(errors="replace"))
    return f"{what} failed (exit {code}){f': {reason}' if reason else ''}; see {log_path}."


def _failed(what: str) -> int:
    print(f"scripts/demo: {what}", file=sys.stderr)
    return 1


def _dags_test(
    airflow: str, env: dict[str, str], dag_id: str, conf: dict[str, str], log_path: Path
) -> subprocess.CompletedProcess[bytes]:
    """``airflow dags test`` one example DAG, its output to ``log_path``; relay what matters."""
    print(f"\n==> airflow dags test {dag_id}", flush=True)
    with log_path.open("w") as log:
        run = subprocess.run(
            [airflow, "dags", "test", dag_id, "--conf", json.dumps(conf)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    for line in relay_lines(log_path.read_text()):
        print(line)
    return run


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("\nscripts/demo: interrupted; rerun scripts/demo to start again.", file=sys.stderr)
        sys.exit(130)
    except OSError as err:
        print(f"scripts/demo: {err}; check that {WORK} is a writable folder, and rerun.", file=sys.stderr)
        sys.exit(1)
