"""Recipient sources: lists, generators and files, read lazily; errors naming the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest

from airflow_provider_braze.exceptions import BrazeValidationError
from airflow_provider_braze.recipients import iter_recipients, recipient_key


def test_generators_are_read_lazily() -> None:
    produced: list[int] = []

    def users() -> Iterator[str]:
        for i in range(1_000_000):
            produced.append(i)
            yield f"u{i}"

    first = list(islice(iter_recipients(users(), "users"), 50))
    assert len(first) == 50
    assert len(produced) <= 51


def test_list_items_are_normalized() -> None:
    alias = {"alias_name": "a", "alias_label": "l"}
    users = list(iter_recipients(["u1", {"external_user_id": "u2"}, alias, {"user_alias": alias}], "users"))
    assert users == ["u1", "u2", alias, alias]
    recipients = list(
        iter_recipients(["u1", {"user_alias": alias, "trigger_properties": {"x": 1}}], "recipients")
    )
    assert recipients == [{"external_user_id": "u1"}, {"user_alias": alias, "trigger_properties": {"x": 1}}]


@pytest.mark.parametrize(
    ("items", "kind", "message"),
    [
        (["u1", ""], "users", "recipient 1 is an empty external user ID"),
        (["u1", 7], "users", "recipient 1 must be an external user ID string or an object"),
        (
            [{"email": "a@b.c", "prioritization": ["x"]}],
            "users",
            "recipient 0 must be an external user ID or a user alias",
        ),
        ([{"external_user_id": "u", "colour": "red"}], "recipients", "recipient 0 has unknown field"),
        ([{"external_user_id": 5}], "users", "recipient 0.external_user_id must be a string"),
    ],
)
def test_bad_items_name_their_position(items: list[object], kind: str, message: str) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        list(iter_recipients(items, kind))  # type: ignore[arg-type]


@pytest.mark.parametrize("source", [{"u1": 1}, b"u1", 42])
def test_sources_that_are_not_lists(source: object) -> None:
    with pytest.raises(BrazeValidationError, match="must be a list, an iterable or a file path"):
        list(iter_recipients(source, "users"))


# ---------------------------------------------------------------------------- files


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_users(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "external_user_id\nu1\n\nu2\n")
    assert list(iter_recipients(path, "users")) == ["u1", "u2"]
    aliases = write(tmp_path, "aliases.csv", "alias_name,alias_label\nn1,l1\n")
    assert list(iter_recipients(str(aliases), "users")) == [{"alias_name": "n1", "alias_label": "l1"}]


def test_csv_trigger_recipients(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.csv",
        "external_user_id,email,prioritization,trigger_properties,trigger_properties.first_name,send_to_existing_only\n"
        'u1,,,"{""coupon"": ""X""}",Ada,false\n'
        ",a@b.c,identified|most_recently_updated,,,\n",
    )
    assert list(iter_recipients(path, "recipients")) == [
        {
            "external_user_id": "u1",
            "trigger_properties": {"coupon": "X", "first_name": "Ada"},
            "send_to_existing_only": False,
        },
        {"email": "a@b.c", "prioritization": ["identified", "most_recently_updated"]},
    ]


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("external_user_id,colour\nu1,red\n", "users", "line 1: unknown column"),
        ("external_user_id\nu1\nu2,extra\n", "users", "line 3 has more fields than the header"),
        (
            "external_user_id,email\nu1,\nu2,a@b.c\n",
            "users",
            "line 3: /messages/send takes an external_user_id",
        ),
        (
            "external_user_id,trigger_properties\nu1,{oops\n",
            "recipients",
            "line 2: column trigger_properties is not valid JSON",
        ),
        ("email\na@b.c\n", "recipients", "line 2 targets an email address, which needs a prioritization"),
        ("external_user_id,send_to_existing_only\nu1,maybe\n", "recipients", "line 2: send_to_existing_only"),
        ("", "users", "line 1: unknown column"),
    ],
)
def test_bad_csv_rows_name_the_line(tmp_path: Path, text: str, kind: str, message: str) -> None:
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(BrazeValidationError, match=message) as err:
        list(iter_recipients(path, kind))  # type: ignore[arg-type]
    assert str(path) in str(err.value)


def test_jsonl(tmp_path: Path) -> None:
    lines = ['"u1"', "", json.dumps({"external_user_id": "u2", "trigger_properties": {"a": 1}}), '"u3"']
    path = write(tmp_path, "r.jsonl", "\n".join(lines) + "\n")
    assert list(iter_recipients(path, "recipients")) == [
        {"external_user_id": "u1"},
        {"external_user_id": "u2", "trigger_properties": {"a": 1}},
        {"external_user_id": "u3"},
    ]


def test_bad_jsonl_line(tmp_path: Path) -> None:
    path = write(tmp_path, "r.ndjson", '"u1"\n"u2"\n{"external_user_id": \n')
    with pytest.raises(BrazeValidationError, match=r"r\.ndjson line 3 is not valid JSON"):
        list(iter_recipients(path, "users"))


def test_format_from_argument_and_unknown_suffix(tmp_path: Path) -> None:
    path = write(tmp_path, "users.txt", "external_user_id\nu1\n")
    with pytest.raises(BrazeValidationError, match="Cannot tell the format"):
        list(iter_recipients(path, "users"))
    assert list(iter_recipients(path, "users", file_format="csv")) == ["u1"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BrazeValidationError, match="Cannot open recipient file"):
        list(iter_recipients(tmp_path / "nope.csv", "users"))


def test_object_storage_url(tmp_path: Path) -> None:
    path = write(tmp_path, "users.jsonl", '"u1"\n"u2"\n')
    assert list(iter_recipients(f"file://{path}", "users")) == ["u1", "u2"]


def test_recipient_keys() -> None:
    assert recipient_key("u1") == "u1"
    assert recipient_key({"external_user_id": "u2"}) == "u2"
    assert recipient_key({"user_alias": {"alias_name": "n", "alias_label": "l"}}) == "alias:l:n"
    assert recipient_key({"alias_name": "n", "alias_label": "l"}) == "alias:l:n"
    assert recipient_key({"email": "a@b.c", "prioritization": ["x"]}) == "email:a@b.c"
