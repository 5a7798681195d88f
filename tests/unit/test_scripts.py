"""The two README commands' own behaviour: one clear line on failure, readable demo output."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_example", REPO / "scripts" / "run_example.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- install failures


def fake_python(tmp_path: Path, *, pip_fails: bool = False, import_fails: bool = False) -> Path:
    """A virtualenv whose python fails where asked, so the scripts' failure paths run offline."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    pip = (
        "echo ERROR: No matching distribution found for apache-airflow==9.9.9; exit 1"
        if pip_fails
        else "exit 0"
    )
    imports = "echo ModuleNotFoundError >&2; exit 1" if import_fails else "exit 0"
    python.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f'  *"pip install"*) {pip};;\n'
        f'  *"import airflow"*) {imports};;\n'
        '  *) echo "RAN: $*"; exit 0;;\n'
        "esac\n"
    )
    python.chmod(0o755)
    return venv


@pytest.mark.parametrize("script", ["demo", "test"])
@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        ({"pip_fails": True}, "could not install apache-airflow==3.3.2 and this provider into"),
        ({"import_fails": True}, "airflow or airflow_provider_braze cannot be imported"),
    ],
)
def test_a_failed_install_stops_with_one_clear_line(
    tmp_path: Path, script: str, failure: dict[str, bool], expected: str
) -> None:
    venv = fake_python(tmp_path, **failure)
    env = {**os.environ, "VENV": str(venv), "AIRFLOW_VERSION": "3.3.2"}
    done = subprocess.run(
        [str(REPO / "scripts" / script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"scripts/{script}: ")
    assert expected in lines[0]
    assert "RAN:" not in done.stdout  # nothing after the install ran
    assert "Traceback" not in done.stdout + done.stderr
    if failure.get("pip_fails"):
        assert "(ERROR: No matching distribution found for apache-airflow==9.9.9)" in lines[0]


def script(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts" / name), *args],
        env={**os.environ, "AIRFLOW_VERSION": "3.3.2", **env},  # CI also runs with 3.3.0 set
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str], script_name: str = "demo") -> str:
    """The single line a failed script ends with (after any tool's own output)."""
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"scripts/{script_name}: "), done.stderr
    return last


def test_a_python_that_is_not_python_3_10_is_one_clear_line(tmp_path: Path) -> None:
    done = script("demo", {"VENV": str(tmp_path / "new-venv"), "PYTHON": "/bin/false"})
    assert done.stderr.strip().splitlines() == [
        "scripts/demo: /bin/false is not Python 3.10 or later; install one, or set PYTHON to it."
    ]
    done = script("demo", {"VENV": str(tmp_path / "new-venv"), "PYTHON": "no-such-python3"})
    assert (
        one_line(done)
        == "scripts/demo: no-such-python3 not found; install Python 3.10+ with venv, or set PYTHON to one."
    )
    assert not (tmp_path / "new-venv").exists()


def test_a_venv_made_with_an_old_python_is_named_and_not_reused(tmp_path: Path) -> None:
    venv = fake_python(tmp_path)
    python = venv / "bin" / "python"
    python.write_text('#!/bin/sh\ncase "$*" in *version_info*) exit 1;; esac\nexit 0\n')
    line = one_line(script("test", {"VENV": str(venv)}), "test")
    assert line == (
        f"scripts/test: {venv} was made with Python older than 3.10; delete it (rm -rf {venv}) and "
        "rerun, with PYTHON set to Python 3.10+ if python3 is older."
    )


def test_a_venv_left_half_made_is_named(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")  # what an interrupted creation leaves
    line = one_line(script("demo", {"VENV": str(venv), "PYTHON": sys.executable}))
    assert line == (
        f"scripts/demo: {venv} exists but is not a usable virtualenv (an interrupted run?); delete it "
        f"(rm -rf {venv}) and rerun."
    )


def test_a_venv_without_pip_is_named(tmp_path: Path) -> None:
    venv = fake_python(tmp_path)
    (venv / "bin" / "python").write_text('#!/bin/sh\ncase "$*" in *pip*) exit 1;; esac\nexit 0\n')
    assert one_line(script("demo", {"VENV": str(venv)})) == (
        f"scripts/demo: {venv} has no pip (an interrupted run?); delete it (rm -rf {venv}) and rerun."
    )


def test_a_pip_failure_without_an_error_line_is_still_one_clear_line(tmp_path: Path) -> None:
    venv = fake_python(tmp_path)
    (venv / "bin" / "python").write_text(
        "#!/bin/sh\ncase \"$*\" in *'pip install'*) echo killed; exit 1;; esac\nexit 0\n"
    )
    line = one_line(script("demo", {"VENV": str(venv)}))
    assert line.startswith(
        f"scripts/demo: could not install apache-airflow==3.3.2 and this provider into {venv}; see "
    )


def test_an_unwritable_place_for_the_venv_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    venv = blocker / "sub" / "venv"
    line = one_line(script("demo", {"VENV": str(venv), "PYTHON": sys.executable}))
    assert (
        line
        == f"scripts/demo: cannot create {venv.parent}: not a writable folder; set VENV to a writable place."
    )


def test_no_selected_tests_is_not_reported_as_failed_tests(tmp_path: Path) -> None:
    venv = fake_python(tmp_path)
    for tool in ("ruff", "mypy"):
        (venv / "bin" / tool).write_text("#!/bin/sh\nexit 0\n")
        (venv / "bin" / tool).chmod(0o755)
    (venv / "bin" / "python").write_text('#!/bin/sh\ncase "$*" in *pytest*) exit 5;; esac\nexit 0\n')
    line = one_line(script("test", {"VENV": str(venv)}, "-k", "zzz_no_such_test"), "test")
    assert line == "scripts/test: no tests were selected (check the -k expression or paths you gave)."


# ---------------------------------------------------------------------------- the demo's output

OURS = "airflow.task.operators.airflow_provider_braze.operators"


def logged(level: str, message: str, logger: str, tail: str = "loc=x.py:1") -> str:
    """A line as Airflow's structured task log writes it."""
    return f"2026-11-26T20:39:53.279430Z [{level:<9}] {message} [{logger}] {tail}"


LONG_PATH = (
    "file:///home/someone/a/very/long/path/to/the/demo/analytics/braze_send_id_pipeline-20261126T203949.csv"
)
SUMMARY = (
    "Braze send ID picks-1: 3000 of 3000 recipients accepted in 60 requests "
    "(unknown outcome: 0, not sent: 0)."
)
LOG = "\n".join(
    [
        logged(
            "warning", "Could not import graphviz. Rendering graph will not be possible.", "airflow.utils.dot"
        ),
        logged(
            "info",
            "Created Braze send ID 'picks-1' for campaign 'sandbox-api-campaign'.",
            f"{OURS}.send_id.C",
        ),
        logged(
            "info",
            "Sending POST /messages/send to 3,000 recipients (campaign 'sandbox-api-campaign', send ID "
            "'picks-1') in batches of 50, 8 at a time.",
            f"{OURS}.messages.SendMessagesOperator",
        ),
        logged("warning", "Using `httpx` is deprecated", "py.warnings", "category=Deprecation lineno=1"),
        logged("info", "Task instance is in running state", "airflow.task"),
        SUMMARY,
        logged(
            "info", f"Done. Returned value was: {SUMMARY}", "airflow.task.operators.python._PythonDecorated"
        ),
        logged("info", "  email: 3000 sent, 2955 delivered, 506 unique opens", f"{OURS}.analytics.G"),
        f"Braze analytics for send ID picks-1 ({LONG_PATH}):",
        "  email: 3000 sent, 2955 delivered, 506 unique opens",
        logged("error", "Task failed with exception", "airflow.task"),
        "Traceback (most recent call last):",
        '  File "/x/y.py", line 1, in <module>',
    ]
)


def test_the_demo_relays_readable_lines() -> None:
    lines = run_example().relay_lines(LOG)
    text = "\n".join(lines)
    assert lines[0] == "    info    Created Braze send ID 'picks-1' for campaign 'sandbox-api-campaign'."
    assert "2026-11-26T" not in text  # no timestamps
    assert "loc=" not in text  # no logger paths
    assert "airflow.task.operators" not in text
    assert "graphviz" not in text  # other components' warnings
    assert "httpx" not in text
    assert "Task instance is in running state" not in text
    assert "Returned value was" not in text  # not repeated
    assert text.count("2955 delivered") == 1  # logged by the operator, then printed: shown once
    # ... in the printed summary, under its heading, not as a bare log line before it.
    heading = next(
        i for i, line in enumerate(lines) if line.startswith("    Braze analytics for send ID picks-1")
    )
    assert "2955 delivered" in " ".join(lines[heading : heading + 4])
    assert "    error   Task failed with exception" in text  # failures are shown
    assert "Traceback" not in text
    assert 'File "/x/y.py"' not in text
    assert all(len(line) <= 100 or " " not in line.strip() for line in lines)
    # Wrapped at word boundaries: joining the wrapped lines gives back every word whole.
    words = " ".join(line.strip() for line in lines).split()
    assert "8 at a time." in " ".join(words)
    assert f"({LONG_PATH}):" in words


def test_the_demo_keeps_earlier_analytics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the Airflow home and the log are rebuilt; earlier CSVs stay, and are named."""
    module = run_example()
    monkeypatch.setattr(module, "WORK", tmp_path)
    (tmp_path / "analytics").mkdir()
    (tmp_path / "analytics" / "earlier.csv").write_text("x\n")
    (tmp_path / "airflow-home").mkdir()
    (tmp_path / "airflow-home" / "airflow.db").write_text("old")

    def stop(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        raise SystemExit(7)  # stop at the first command; the clean-up has happened by then

    monkeypatch.setattr(module.subprocess, "run", stop)
    with pytest.raises(SystemExit):
        module.main()
    assert (tmp_path / "analytics" / "earlier.csv").read_text() == "x\n"
    assert not (tmp_path / "airflow-home" / "airflow.db").exists()


def test_the_script_comments_match_the_pipeline() -> None:
    demo = (REPO / "scripts" / "demo").read_text()
    for step in ("create a send ID", "send to 3,000 recipients", "analytics", "CSV"):
        assert step in demo
    assert sys.executable  # the scripts run with the repository's virtualenv python


def test_a_failed_run_is_reported_with_its_reason() -> None:
    module = run_example()
    log = (
        LOG
        + "\n"
        + "\n".join(
            [
                '  File "/x/pathlib.py", line 1116, in mkdir',
                "    os.mkdir(self, mode)",
                "FileExistsError: [Errno 17] File exists: '/repo/.demo/analytics'",
            ]
        )
    )
    assert module.failure_reason(log) == "FileExistsError: [Errno 17] File exists: '/repo/.demo/analytics'"
    assert module.failure_reason("all went well") is None


def test_a_results_folder_that_is_a_file_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = run_example()
    monkeypatch.setattr(module, "WORK", tmp_path)
    (tmp_path / "analytics").write_text("x")
    assert module.main() == 1
    assert capsys.readouterr().err.strip() == (
        f"scripts/demo: {tmp_path / 'analytics'} is not a folder (the demo keeps its results there); "
        "remove it and rerun."
    )


def test_the_sandbox_command_says_in_one_line_when_it_cannot_listen() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "airflow_provider_braze.sandbox", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"braze sandbox: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_braze.sandbox", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip().splitlines()[-1].endswith("error: --port must be between 0 and 65535, got 99999")
    )


# ---------------------------------------------------------------------------- the demo's arguments


def test_the_demo_says_what_it_takes_without_installing_anything(tmp_path: Path) -> None:
    venv = tmp_path / "never-created"
    done = script("demo", {"VENV": str(venv), "PYTHON": "/bin/false"}, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: scripts/demo [--pipeline | --experiment]\n")
    for option in ("--pipeline", "--experiment", "--help"):
        assert f"\n  {option}" in done.stdout or f", {option}" in done.stdout
    assert not venv.exists()
    # Every scripts/demo option a docstring or the README mentions is one it takes.
    mentioned = set()
    for path in [REPO / "README.md", *(REPO / "example_dags").glob("*.py")]:
        mentioned |= set(re.findall(r"scripts/demo (--[a-z-]+)", path.read_text()))
    assert mentioned
    assert mentioned <= {"--pipeline", "--experiment", "--help"}


@pytest.mark.parametrize("args", [["--nope"], ["--pipeline", "--experiment"], ["extra"]])
def test_the_demo_refuses_unknown_arguments_in_one_line(tmp_path: Path, args: list[str]) -> None:
    venv = tmp_path / "never-created"
    done = script("demo", {"VENV": str(venv)}, *args)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"scripts/demo: unknown arguments: {' '.join(args)}; scripts/demo --help says what it takes."
    )
    assert not venv.exists()


@pytest.mark.parametrize(
    ("args", "ran"),
    [
        ([], ["braze_send_id_pipeline", "braze_content_experiment"]),
        (["--pipeline"], ["braze_send_id_pipeline"]),
        (["--experiment"], ["braze_content_experiment"]),
    ],
)
def test_the_demo_runs_the_examples_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], ran: list[str]
) -> None:
    module = run_example()
    monkeypatch.setattr(module, "WORK", tmp_path)
    dags: list[str] = []

    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if command[1:3] == ["dags", "test"]:
            dags.append(command[3])
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(module.subprocess, "run", fake_run)
    # The pipeline's own checks read what the sandbox received: here it received nothing.
    monkeypatch.setattr(
        module,
        "_pipeline",
        lambda airflow, env, *rest: fake_run([airflow, "dags", "test", module.DAG_ID]) and None,
    )
    assert module.main(args) == 0
    assert dags == ran
