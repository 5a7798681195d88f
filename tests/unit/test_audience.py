"""The audience read before a send: exact duplicates in bounded memory, every row accounted for,
and spool files that never outlive their try (a killed one's are removed by the next)."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_braze.delivery import (
    Audience,
    read_audience,
    recipient_identity,
    spool_folder,
    spool_root,
)
from airflow_provider_braze.delivery import audience as audience_module
from airflow_provider_braze.exceptions import BrazeValidationError


def alias(name: str, label: str = "l") -> dict[str, Any]:
    return {"user_alias": {"alias_name": name, "alias_label": label}}


def first_entries(rows: list[Any]) -> list[Any]:
    """Each identity's first entry, in order: what a send addresses (the reference)."""
    seen: set[Any] = set()
    kept = []
    for row in rows:
        identity = recipient_identity(row)
        if identity not in seen:
            seen.add(identity)
            kept.append(row)
    return kept


def sent(audience: Audience) -> list[Any]:
    batches = list(audience.batches())
    assert all(len(batch) == 50 for batch in batches[:-1])
    return [recipient for batch in batches for recipient in batch]


def files_under(folder: str | Path) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, names in os.walk(folder) for f in names)


@pytest.fixture(autouse=True)
def own_temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A temporary folder of this test's own (for this process and its children), so what each
    test finds in it is its own doing."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))


@pytest.fixture
def small_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spill identities to the partition files every 64 and positions every 8: small inputs
    then take every path that large ones take."""
    monkeypatch.setattr(audience_module, "_BUFFERED", 64)
    monkeypatch.setattr(audience_module, "_POSITIONS_BUFFERED", 8)


# ---------------------------------------------------------------------------- duplicates


@pytest.mark.parametrize("buffers", ["default", "small"])
def test_duplicates_across_spills_keep_each_first_entry_in_order(
    request: pytest.FixtureRequest, buffers: str
) -> None:
    if buffers == "small":
        request.getfixturevalue("small_buffers")
    rng = random.Random(7)
    rows: list[Any] = []
    for _ in range(70_000 if buffers == "default" else 3_000):
        number = rng.randrange(20_000 if buffers == "default" else 900)
        rows.append(f"u{number}" if rng.random() < 0.7 else alias(f"n{number}"))
    expected = first_entries(rows)
    assert len(expected) < len(rows) - 1000  # many repeats, some far apart
    with read_audience(rows, "users") as audience:
        assert (audience.read, audience.unique) == (len(rows), len(expected))
        assert audience.duplicates == len(rows) - len(expected)
        assert sent(audience) == [r if isinstance(r, str) else r["user_alias"] for r in expected]


def test_many_repeats_of_one_recipient(small_buffers: None) -> None:
    rows = ["u1"] * 5_000 + [f"u{i}" for i in range(200)] + ["u1"] * 5_000
    with read_audience(rows, "users") as audience:
        assert (audience.read, audience.unique, audience.duplicates) == (10_200, 200, 10_000)
        assert sent(audience) == ["u1", "u0", *(f"u{i}" for i in range(2, 200))]
        assert audience.duplicate_examples == ("u1",) * 5


def test_identities_emails_ignore_case_and_aliases_compare_whole() -> None:
    rows: list[Any] = [
        {"email": "Ada@Example.com", "prioritization": ["identified"]},
        {"external_user_id": "u1", "trigger_properties": {"n": 1}},
        {"email": " ada@example.COM ", "prioritization": ["unidentified"]},
        {"user_alias": {"alias_name": "bc", "alias_label": "a"}},
        {"user_alias": {"alias_name": "c", "alias_label": "ab"}},  # not the alias above
        "u1",  # the external user ID of the second entry
        {"external_user_id": "email:ada@example.com"},  # an ID, not the email address
        {"user_alias": {"alias_name": "bc", "alias_label": "a"}, "trigger_properties": {"n": 2}},
    ]
    with read_audience(rows, "recipients") as audience:
        assert (audience.read, audience.unique) == (8, 5)
        assert sent(audience) == [
            rows[0],
            rows[1],
            rows[3],
            rows[4],
            {"external_user_id": "email:ada@example.com"},
        ]
        assert audience.duplicate_examples == ("email:ada@example.com", "u1", "alias:a:bc")


def test_allowed_duplicates_are_all_sent_in_order(small_buffers: None) -> None:
    rows = [f"u{i % 70}" for i in range(300)]
    with read_audience(rows, "users", deduplicate=False) as audience:
        assert (audience.read, audience.unique, audience.duplicates, audience.sent) == (300, 70, 230, 300)
        assert sent(audience) == rows
        assert audience.duplicate_examples == ("u0", "u1", "u2", "u3", "u4")


def test_one_partition_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a key is checked never decides whether it repeats: with every key in one partition
    (as if every hash collided) the answer is the same."""
    rng = random.Random(3)
    rows = [f"u{rng.randrange(500)}" for _ in range(2_000)]
    with read_audience(rows, "users") as audience:
        spread = (audience.unique, sent(audience), audience.duplicate_examples)
    monkeypatch.setattr(audience_module, "_PARTITIONS", 1)
    monkeypatch.setattr(audience_module, "_BUFFERED", 100)
    with read_audience(rows, "users") as audience:
        assert (audience.unique, sent(audience), audience.duplicate_examples) == spread
    assert spread[0] == len(first_entries(rows))


def test_the_answer_does_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    source = tmp_path / "users.jsonl"
    source.write_text("".join(f'"u{i % 997}"\n' for i in range(5_000)))
    code = (
        "import json, sys\n"
        "from airflow_provider_braze.delivery import read_audience\n"
        "with read_audience(sys.argv[1], 'users') as a:\n"
        "    print(json.dumps([a.unique, a.digest, a.duplicate_examples, [b for b in a.batches()]]))\n"
    )
    answers = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        child = subprocess.run(
            [sys.executable, "-c", code, str(source)], capture_output=True, text=True, env=env, check=True
        )
        answers.add(child.stdout.strip().splitlines()[-1])
    (answer,) = answers
    assert json.loads(answer)[0] == 997


# ---------------------------------------------------------------------------- refused input


def test_text_utf8_cannot_carry_is_refused_before_anything_is_spooled() -> None:
    with pytest.raises(BrazeValidationError) as err:
        read_audience(["u1", "u\ud800"], "users")
    assert str(err.value) == (
        "recipient 1 is not valid text: 'u\\ud800' holds a lone surrogate, which UTF-8 cannot encode."
    )
    assert files_under(spool_root()) == []


def test_rows_without_an_id_fail_the_read(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("external_user_id,alias_name\nu1,\n,\n")  # line 3: two empty fields, no ID
    with pytest.raises(BrazeValidationError) as err:
        read_audience(path, "users")
    assert str(err.value) == (
        f"{path} line 3 has no recipient ID (external_user_id, alias_name and alias_label, or email); "
        "every row must name its recipient (only empty lines are skipped)."
    )
    assert files_under(spool_root()) == []


# ---------------------------------------------------------------------------- spool files


def test_spool_folders_are_named_after_the_task_instance() -> None:
    folder = spool_folder("dag", "send", "run", -1)
    root = os.path.join(os.environ["TMPDIR"], f"braze-spool-{os.getuid()}")
    assert os.path.dirname(folder) == spool_root() == root
    assert folder == spool_folder("dag", "send", "run", -1)
    others = {
        spool_folder("dag2", "send", "run", -1),
        spool_folder("dag", "send2", "run", -1),
        spool_folder("dag", "send", "run2", -1),
        spool_folder("dag", "send", "run", 0),
        spool_folder("dag_send", "", "run", -1),
    }
    assert folder not in others
    assert len(others) == 5


def test_spool_lives_in_a_private_folder_and_is_removed_when_the_try_ends() -> None:
    folder = spool_folder("dag", "send", "run", 3)
    with read_audience([f"u{i}" for i in range(120)], "users", spool_dir=folder) as audience:
        (spool,) = [f for f in files_under(folder) if f.endswith(".jsonl")]
        assert os.path.dirname(os.path.dirname(spool)) == folder
        for private in (spool_root(), folder, os.path.dirname(spool)):
            assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
        assert len(sent(audience)) == 120
    assert not os.path.exists(folder)
    assert os.listdir(spool_root()) == []


def test_without_a_task_instance_the_folder_is_the_process_own() -> None:
    with read_audience(["u1", "u2"], "users") as audience:
        (spool,) = [f for f in files_under(spool_root()) if f.endswith(".jsonl")]
        assert Path(spool).parent.parent.name == f"pid-{os.getpid()}"
        assert sent(audience) == ["u1", "u2"]
    assert os.listdir(spool_root()) == []


KILLED_TRY = r"""
import os, signal, sys
from airflow_provider_braze.delivery import read_audience
audience = read_audience([f"u{i}" for i in range(100_000)] * 2, "users", spool_dir=sys.argv[1])
print(audience.unique, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_next_try_removes_what_a_killed_try_left() -> None:
    folder = spool_folder("dag", "send", "run", -1)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_TRY, folder], capture_output=True, text=True, check=False
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.strip().splitlines()[-1] == "100000"
    left = [f for f in files_under(folder) if os.path.dirname(f) != folder]  # its try folder's
    assert any(f.endswith("spool.jsonl") for f in left), left  # the killed try's spool is there
    assert any(f.endswith("repeats") for f in left), left

    with read_audience(["u1"], "users", spool_dir=folder) as audience:
        assert [f for f in files_under(folder) if f not in left and f.endswith("spool.jsonl")]
        assert not any(os.path.exists(f) for f in left)
        assert sent(audience) == ["u1"]
    assert not os.path.exists(folder)


def test_a_try_that_still_runs_keeps_its_files() -> None:
    folder = spool_folder("dag", "send", "run", -1)
    with read_audience(["u1", "u2"], "users", spool_dir=folder) as running:
        with read_audience(["u3"], "users", spool_dir=folder) as other:
            assert sent(other) == ["u3"]
        assert sent(running) == ["u1", "u2"]
        assert len([f for f in files_under(folder) if f.endswith("spool.jsonl")]) == 1
    assert not os.path.exists(folder)


def test_a_spool_root_that_is_not_a_private_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, spool_root())  # as another user could have made it, first
    with pytest.raises(PermissionError) as err:
        read_audience(["u1"], "users")
    assert str(err.value) == (
        f"{spool_root()} is not a folder of this user (uid {os.getuid()}); the spool needs a "
        "private one: remove it, or point TMPDIR elsewhere."
    )
    assert os.listdir(elsewhere) == []


def test_a_spool_root_others_could_enter_is_made_private() -> None:
    os.makedirs(spool_root(), mode=0o755, exist_ok=True)
    os.chmod(spool_root(), 0o755)  # noqa: S103  (what the test is about)
    with read_audience(["u1"], "users"):
        assert stat.S_IMODE(os.stat(spool_root()).st_mode) == 0o700


@pytest.mark.parametrize(
    "chunk",
    [
        ["u1", "u2"],
        ['a"b', "c"],
        ["a\\b"],
        ["tab\there", "x"],
        ["nul\x00"],
        ["del\x7f", "line\u2028sep", "nbsp\u00a0", "é", "\U0001f600", "a b"],
        [{"external_user_id": "u1", "trigger_properties": {"b": 1, "a": 2}}],
        ["u1", {"alias_name": "n", "alias_label": "l"}],
    ],
)
def test_spool_lines_are_what_json_writes(chunk: list[Any]) -> None:
    """The fingerprint hashes spool lines: a faster way to write them must give the same bytes."""
    expected = json.dumps(chunk, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert audience_module._spool_line(chunk) == expected


def test_nan_or_infinity_in_a_recipient_is_refused_before_anything_is_sent(tmp_path: Any) -> None:
    """They are not JSON: the batch would fail at sending time, reported in doubt (found by an
    adversarial pass); refused while reading, naming where."""
    import math

    from airflow_provider_braze.delivery import read_audience
    from airflow_provider_braze.exceptions import BrazeValidationError

    rows = [{"external_user_id": f"u{i}", "trigger_properties": {"score": 1}} for i in range(120)]
    rows[70]["trigger_properties"] = {"score": math.nan}
    with pytest.raises(
        BrazeValidationError, match=r"One of recipients 51 to 100 \(in the order read\) holds NaN or Infinity"
    ):
        read_audience(rows, "recipients", spool_dir=str(tmp_path))
