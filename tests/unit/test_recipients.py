"""Recipient sources: lists, generators and files, read lazily; errors naming the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest

from airflow_provider_braze.exceptions import BrazeValidationError
from airflow_provider_braze.identity import recipient_key
from airflow_provider_braze.recipients import iter_recipients


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
        "external_user_id,email,prioritization,trigger_properties,trigger_properties.first_name,"
        "send_to_existing_only,attributes\n"
        'u1,,,"{""coupon"": ""X""}",Ada,false,"{""first_name"": ""Ada""}"\n'
        ",a@b.c,identified|most_recently_updated,,,,\n",
    )
    assert list(iter_recipients(path, "recipients")) == [
        {
            "external_user_id": "u1",
            "trigger_properties": {"coupon": "X", "first_name": "Ada"},
            "send_to_existing_only": False,
            # Braze: send_to_existing_only false needs attributes to create the user.
            "attributes": {"first_name": "Ada"},
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


# ---------------------------------------------------------------------------- every row accounted for

NO_ID = "no recipient ID (external_user_id, alias_name and alias_label, or email)"
RULE = "every row must name its recipient (only empty lines are skipped)"


def test_csv_rows_without_an_id_are_counted_and_refused(tmp_path: Path) -> None:
    rows = ["external_user_id,trigger_properties.coupon", "u1,A"]
    rows += [",", "", ",B", "u2,C", ",", ",", '"",D', ",", "u3,", ","]  # 7 rows without an ID
    path = write(tmp_path, "r.csv", "\n".join(rows) + "\n")
    read: list[object] = []
    with pytest.raises(BrazeValidationError) as err:
        read.extend(iter_recipients(path, "recipients"))
    assert str(err.value) == f"{path}: 7 rows have {NO_ID}: lines 3, 5, 7, 8, 9 and 2 more; {RULE}."
    # The other rows were read first: the refusal comes once every row is accounted for.
    assert [r["external_user_id"] for r in read] == ["u1", "u2", "u3"]  # type: ignore[index]


@pytest.mark.parametrize("kind", ["users", "recipients"])
def test_one_csv_row_without_an_id(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path, "users.csv", "external_user_id,alias_name,alias_label\nu1,,\n,,\n\n\nu2,,\n")
    with pytest.raises(BrazeValidationError) as err:
        list(iter_recipients(path, kind))  # type: ignore[arg-type]
    assert str(err.value) == f"{path} line 3 has {NO_ID}; {RULE}."


def test_csv_without_id_columns_refuses_every_row(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", 'trigger_properties\n"{""a"": 1}"\n"{""a"": 2}"\n')
    with pytest.raises(BrazeValidationError) as err:
        list(iter_recipients(path, "recipients"))
    assert str(err.value) == f"{path}: 2 rows have {NO_ID}: lines 2, 3; {RULE}."


def test_empty_lines_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "users.csv", "external_user_id\n\nu1\n\n\nu2\n\n")
    assert list(iter_recipients(path, "users")) == ["u1", "u2"]
    jsonl = write(tmp_path, "users.jsonl", '\n"u1"\n  \n"u2"\n\n')
    assert list(iter_recipients(jsonl, "users")) == ["u1", "u2"]


# ---------------------------------------------------------------------------- text UTF-8 cannot carry

LONE = "holds a lone surrogate, which UTF-8 cannot encode."


@pytest.mark.parametrize(
    ("name", "data", "line", "byte"),
    [
        ("users.csv", b"external_user_id\nu1\nu\xff2\nu3\n", 3, "0xff"),
        ("users.jsonl", b'"u1"\n"u2"\n"u1\xc3"\n', 3, "0xc3"),
        ("users.jsonl", b'"u1"\n' + b'"bench-user"\n' * 3000 + b'"\xe9t\xe9"\n', 3002, "0xe9"),
        ("bom.csv", b"\xef\xbb\xbfexternal_user_id\n\x80\n", 2, "0x80"),
        ("head.csv", b"external_user_id,\xfftrigger_properties.x\nu1,a\n", 1, "0xff"),
    ],
    ids=["csv", "jsonl", "jsonl-past-the-first-block", "csv-with-bom", "csv-header"],
)
def test_bytes_that_are_not_utf8_name_their_line(
    tmp_path: Path, name: str, data: bytes, line: int, byte: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(BrazeValidationError) as err:
        list(iter_recipients(path, "users"))
    assert str(err.value) == (
        f"{path} line {line} is not valid UTF-8: byte {byte} cannot be decoded; save the file as UTF-8."
    )


def test_a_lone_surrogate_escaped_in_json_lines_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "r.jsonl", '"u1"\n"\\ud83d\\ude00"\n{"external_user_id": "u\\ud800"}\n')
    with pytest.raises(BrazeValidationError) as err:
        list(iter_recipients(path, "recipients"))
    assert str(err.value) == f"{path} line 3 is not valid text: 'u\\ud800' {LONE}"
    # A surrogate pair is one character, and fine.
    assert list(iter_recipients(write(tmp_path, "ok.jsonl", '"\\ud83d\\ude00"\n'), "users")) == ["\U0001f600"]


def test_a_lone_surrogate_escaped_in_a_csv_json_column_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", 'external_user_id,trigger_properties\nu1,"{""a"": ""\\udc00""}"\n')
    with pytest.raises(BrazeValidationError) as err:
        list(iter_recipients(path, "recipients"))
    assert str(err.value) == f"{path} line 2 is not valid text: '\\udc00' {LONE}"


@pytest.mark.parametrize(
    ("items", "kind", "message"),
    [
        (["u1", "u2", "\ud800"], "users", f"recipient 2 is not valid text: '\\ud800' {LONE}"),
        ([{"external_user_id": "x\udcff"}], "users", f"recipient 0 is not valid text: 'x\\udcff' {LONE}"),
        (
            ["u1", {"alias_name": "n", "alias_label": "l\ud800"}],
            "users",
            f"recipient 1 is not valid text: 'l\\ud800' {LONE}",
        ),
        (
            [{"external_user_id": "u", "trigger_properties": {"k": ["ok", "\udfff"]}}],
            "recipients",
            f"recipient 0 is not valid text: '\\udfff' {LONE}",
        ),
        (
            [{"external_user_id": "u", "trigger_properties": {"\ud800": 1}}],
            "recipients",
            f"recipient 0 is not valid text: '\\ud800' {LONE}",
        ),
    ],
    ids=["string", "external_user_id", "alias", "property-value", "property-name"],
)
def test_a_lone_surrogate_in_a_python_list_names_its_position(
    items: list[object], kind: str, message: str
) -> None:
    with pytest.raises(BrazeValidationError) as err:
        list(iter_recipients(items, kind))  # type: ignore[arg-type]
    assert str(err.value) == message


def test_bytes_that_are_not_utf8_at_an_object_storage_url(tmp_path: Path) -> None:
    path = tmp_path / "users.jsonl"
    path.write_bytes(b'"u1"\n"\xa0"\n')
    with pytest.raises(BrazeValidationError) as err:
        list(iter_recipients(f"file://{path}", "users"))
    assert str(err.value) == (
        f"file://{path} line 2 is not valid UTF-8: byte 0xa0 cannot be decoded; save the file as UTF-8."
    )


def test_emails_are_one_person_in_any_ascii_case_but_no_unicode_folding() -> None:
    """A-Z case and surrounding spaces do not make another inbox; Unicode folding would merge
    people who are not the same (straße / strasse, the Kelvin sign / k), and a recipient merged
    away as a duplicate is never sent to."""
    from airflow_provider_braze.identity import recipient_identity

    def same(a: str, b: str) -> bool:
        return recipient_identity({"email": a}) == recipient_identity({"email": b})

    assert same("Ada@Example.COM", " ada@example.com ")
    assert not same("straße@example.de", "strasse@example.de")
    assert not same("\u212a@example.com", "k@example.com")
    assert not same("İ@example.com", "i@example.com")
    assert recipient_key({"email": "Ada@Example.COM"}) == "email:ada@example.com"
