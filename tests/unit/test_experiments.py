"""The audience split: stable, salted, shares honoured, streamed to one file per variant."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from statistics import NormalDist
from typing import Any
from unittest import mock

import pytest

from airflow_provider_braze.exceptions import BrazeError, BrazeValidationError
from airflow_provider_braze.experiments import (
    Assigner,
    bucket,
    check_experiment_name,
    check_shares,
    minimum_detectable_effect,
    split_audience,
)
from airflow_provider_braze.operators.experiments import SplitAudienceOperator
from airflow_provider_braze.operators.messages import SendMessagesOperator
from airflow_provider_braze.recipients import iter_recipients

SHARES = {"control": 0.1, "a": 0.45, "b": 0.45}
USERS = [f"user-{n:06d}" for n in range(100_000)]


def test_buckets_are_fixed_values_not_pythons_hash() -> None:
    # Pinned: a change of hash would silently move every user of a running experiment.
    assert bucket("exp", "user-1") == pytest.approx(0.4766174855, abs=1e-10)
    assert bucket("exp", "user-2") == pytest.approx(0.9624874569, abs=1e-10)
    assert bucket("other", "user-1") != bucket("exp", "user-1")


@pytest.mark.parametrize("hash_seed", ["0", "4242"])
def test_assignment_is_the_same_in_other_processes_and_hash_seeds(hash_seed: str) -> None:
    code = (
        "import json, sys\n"
        "from airflow_provider_braze.experiments import Assigner\n"
        "a = Assigner('exp', {'control': 0.1, 'a': 0.45, 'b': 0.45})\n"
        "print(json.dumps([a.variant_of(f'user-{n:06d}') for n in range(2000)]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    here = Assigner("exp", SHARES)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [here.variant_of(u) for u in USERS[:2000]]


def test_shares_are_met_within_statistical_tolerance() -> None:
    assigner = Assigner("exp", SHARES)
    counts = Counter(assigner.variant_of(user) for user in USERS)
    n = len(USERS)
    for name, share in SHARES.items():
        sd = math.sqrt(n * share * (1 - share))
        assert abs(counts[name] - n * share) < 4 * sd, (name, counts[name])


def test_another_experiment_reshuffles_independently() -> None:
    first, second = Assigner("exp-1", SHARES), Assigner("exp-2", SHARES)
    same = sum(first.variant_of(u) == second.variant_of(u) for u in USERS) / len(USERS)
    expected = sum(share * share for share in SHARES.values())  # independent assignments
    assert abs(same - expected) < 0.01


def test_the_sorted_variant_names_are_the_order_of_the_buckets() -> None:
    # A user's variant depends on their bucket and the shares; not on other users, nor on the
    # order the shares were written in: a [0, .45), b [.45, .9), control [.9, 1).
    assigner = Assigner("exp", SHARES)
    assert [assigner.variant_of(u) for u in USERS[:50]] == [
        "a" if bucket("exp", u) < 0.45 else "b" if bucket("exp", u) < 0.9 else "control" for u in USERS[:50]
    ]


def test_reordered_shares_assign_everyone_alike() -> None:
    first = Assigner("exp", {"control": 0.1, "a": 0.45, "b": 0.45})
    again = Assigner("exp", {"b": 0.45, "control": 0.1, "a": 0.45})
    assert [first.variant_of(u) for u in USERS[:5000]] == [again.variant_of(u) for u in USERS[:5000]]


def test_a_stray_space_in_the_name_gives_the_same_split() -> None:
    trimmed, spaced = Assigner("exp", SHARES), Assigner(" exp ", SHARES)
    assert spaced.experiment == "exp"
    assert [spaced.variant_of(u) for u in USERS[:5000]] == [trimmed.variant_of(u) for u in USERS[:5000]]


@pytest.mark.parametrize("experiment", ["", " ", "\t\n"])
def test_a_blank_experiment_name_is_refused(experiment: str) -> None:
    with pytest.raises(BrazeValidationError, match="experiment must be a non-empty name"):
        check_experiment_name(experiment)


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ({"control": 0.1, "a": 0.45, "b": 0.4}, "The shares must add up to 1, got 0.95"),
        ({"control": 0.5, "a": 0.6}, "The shares must add up to 1, got 1.1"),
        ({"control": 0, "a": 1}, "The share of variant 'control' must be more than 0"),
        ({"control": -0.5, "a": 1.5}, "must be more than 0 and at most 1"),
        ({"control": "0.5", "a": 0.5}, "The share of variant 'control' must be a number"),
        ({"control": True, "a": 0.5}, "must be a number"),
        ({"control": float("nan"), "a": 1}, "must be a number"),
        ({"con trol": 0.5, "a": 0.5}, "Variant name 'con trol' must be"),
        ({"../x": 0.5, "a": 0.5}, "Variant name '../x' must be"),
        ({}, "shares must map each variant name"),
        ([0.5, 0.5], "shares must map each variant name"),
        ('{"control": 0.5, "a": 0.6}', "The shares must add up to 1, got 1.1"),
        ("{control: 0.5}", "shares is not a JSON object"),
        ("control=0.5", "shares must map each variant name"),
    ],
)
def test_bad_shares_are_refused(shares: Any, message: str) -> None:
    with pytest.raises(BrazeValidationError, match=message.replace("(", r"\(")):
        check_shares(shares)


def test_a_rendered_json_object_is_read_as_the_shares() -> None:
    # shares is a template field: a template that renders a mapping gives its JSON text.
    assert check_shares('{"control": 0.1, "a": 0.45, "b": 0.45}') == {"control": 0.1, "a": 0.45, "b": 0.45}


def test_thirds_add_up_to_one() -> None:
    assert check_shares({"control": 1 / 3, "a": 1 / 3, "b": 1 / 3}) == {
        "control": 1 / 3,
        "a": 1 / 3,
        "b": 1 / 3,
    }


def test_unknown_control_is_refused() -> None:
    with pytest.raises(BrazeValidationError, match="The control variant 'ctrl' is not one of the shares' "):
        check_shares(SHARES, control="ctrl")


def test_split_writes_one_file_per_variant_and_loses_nobody(tmp_path: Path) -> None:
    source = tmp_path / "audience.csv"
    source.write_text("external_user_id\n" + "\n".join(USERS[:3000]) + "\n")
    variants = split_audience(source, experiment="exp", shares=SHARES, output_path=f"file://{tmp_path}/out")
    assert [v.variant for v in variants] == ["control", "a", "b"]
    assigner = Assigner("exp", SHARES)
    for v in variants:
        assert v.recipients == f"file://{tmp_path}/out/{v.variant}.jsonl"
        read = list(iter_recipients(v.recipients, "users"))
        assert read == [u for u in USERS[:3000] if assigner.variant_of(u) == v.variant]
        assert v.count == len(read)
    assert sum(v.count for v in variants) == 3000


def test_split_keeps_each_recipients_shape_for_its_endpoint(tmp_path: Path) -> None:
    users = ["u1", {"user_alias": {"alias_name": "n", "alias_label": "l"}}, {"external_user_id": "u2"}]
    out = split_audience(users, experiment="e", shares={"x": 1.0}, output_path=tmp_path)
    assert list(iter_recipients(out[0].recipients, "users")) == [
        "u1",
        {"alias_name": "n", "alias_label": "l"},  # the shape /messages/send takes in user_aliases
        "u2",
    ]
    recipients = [{"external_user_id": "u1", "trigger_properties": {"name": "Zoë"}}]
    out = split_audience(
        recipients, experiment="e", shares={"x": 1.0}, output_path=tmp_path, recipient_kind="recipients"
    )
    assert list(iter_recipients(out[0].recipients, "recipients")) == recipients
    assert "Zoë" in Path(out[0].recipients).read_text(encoding="utf-8")


def test_a_recipient_the_endpoint_cannot_take_names_its_line(tmp_path: Path) -> None:
    source = tmp_path / "a.jsonl"
    source.write_text('"u1"\n{"email": "x@example.com"}\n')
    with pytest.raises(
        BrazeValidationError, match=r"a.jsonl line 2 must be an external user ID or a user alias"
    ):
        split_audience(source, experiment="e", shares={"x": 1.0}, output_path=tmp_path / "out")


def test_an_empty_variant_is_an_error_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(BrazeValidationError, match=r"Variant\(s\) a got no recipients out of 3"):
        split_audience(["u1", "u2", "u3"], experiment="exp", shares=SHARES, output_path=tmp_path)
    variants = split_audience(
        ["u1", "u2", "u3"], experiment="exp", shares=SHARES, output_path=tmp_path, allow_empty_variants=True
    )
    assert sum(v.count for v in variants) == 3
    with pytest.raises(BrazeValidationError, match=r"got no recipients out of 0"):
        split_audience([], experiment="exp", shares=SHARES, output_path=tmp_path)


def test_a_retry_writes_the_same_files(tmp_path: Path) -> None:
    first = split_audience(USERS[:500], experiment="exp", shares=SHARES, output_path=tmp_path)
    texts = [Path(v.recipients).read_text() for v in first]
    second = split_audience(USERS[:500], experiment="exp", shares=SHARES, output_path=tmp_path)
    assert [Path(v.recipients).read_text() for v in second] == texts


def test_an_unwritable_folder_is_a_retryable_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BrazeError, match="Cannot write the variant file") as caught:
        split_audience(USERS[:10], experiment="exp", shares={"x": 1.0}, output_path=blocker / "sub")
    assert not isinstance(caught.value, BrazeValidationError)


@pytest.mark.parametrize("experiment", ["", "   ", None, 3])
def test_the_experiment_needs_a_name(experiment: Any, tmp_path: Path) -> None:
    with pytest.raises(BrazeValidationError, match="experiment must be a non-empty name"):
        split_audience(USERS[:10], experiment=experiment, shares={"x": 1.0}, output_path=tmp_path)


# ------------------------------------------------------------------------- the operator


def logged(log: mock.MagicMock) -> list[str]:
    """What an operator's mocked logger was given, formatted."""
    return [c.args[0] % c.args[1:] for c in log.method_calls if c.args]


def test_operator_returns_mapping_ready_dicts_and_logs_counts(tmp_path: Path) -> None:
    ti = mock.MagicMock()
    op = SplitAudienceOperator(
        task_id="split",
        recipients=USERS[:2000],
        experiment="exp",
        shares=SHARES,
        control="control",
        output_path=str(tmp_path),
        variant_kwargs={"a": {"send_id": "s-a", "messages": {"email": {}}}, "b": {"send_id": "s-b"}},
    )
    log = mock.MagicMock()
    with mock.patch.object(SplitAudienceOperator, "log", new_callable=mock.PropertyMock, return_value=log):
        result = op.execute({"ti": ti})
    paths = [str(tmp_path / f"{name}.jsonl") for name in SHARES]
    assert result == [
        {"recipients": paths[0]},
        {"recipients": paths[1], "send_id": "s-a", "messages": {"email": {}}},
        {"recipients": paths[2], "send_id": "s-b"},
    ]
    pushed = {c.kwargs["key"]: c.kwargs["value"] for c in ti.xcom_push.call_args_list}
    assert "recipient_files" not in pushed
    counts = {v["variant"]: v["count"] for v in pushed["variants"]}
    assert sum(counts.values()) == 2000
    lines = logged(log)
    assert lines[0] == "Split 2000 recipients for experiment 'exp' into 3 variants:"
    share = 100 * (counts["control"] / 2000)
    assert lines[1] == f"  control: {counts['control']} recipients ({share:.1f}%, share 10.0%) -> {paths[0]}"
    assert len(lines) == 4
    assert pushed["planned_shares"] == SHARES


def test_operator_logs_the_planned_detectable_effects(tmp_path: Path) -> None:
    op = SplitAudienceOperator(
        task_id="split",
        recipients=USERS[:2000],
        experiment="exp",
        shares=SHARES,
        control="control",
        output_path=str(tmp_path),
        baseline_rate=0.1,
    )
    log = mock.MagicMock()
    with mock.patch.object(SplitAudienceOperator, "log", new_callable=mock.PropertyMock, return_value=log):
        op.execute({"ti": mock.MagicMock()})
    effects = minimum_detectable_effect(2000, SHARES, 0.1)
    lines = logged(log)
    assert lines[4] == (
        "Minimum detectable effects against control at a baseline rate of 10.00% (80% power, 95% "
        "confidence, Bonferroni over 2 comparison(s)):"
    )
    a = effects["a"]
    assert a is not None
    relative = f"+{1000 * a:.0f}% relative"
    assert lines[5] == f"  a: +{100 * a:.2f} points (10.00% -> {10 + 100 * a:.2f}%, {relative})"
    assert len(lines) == 7


@pytest.mark.parametrize("rate", [0, 1, -0.1, "0.1"])
def test_operator_refuses_a_baseline_rate_outside_0_1(rate: Any) -> None:
    with pytest.raises(BrazeValidationError, match="baseline_rate must be above 0 and below 1"):
        SplitAudienceOperator(
            task_id="split",
            recipients=[],
            experiment="e",
            shares=SHARES,
            output_path="/x",
            baseline_rate=rate,
        )


def test_operator_output_feeds_the_send_operators_arguments(tmp_path: Path) -> None:
    # What expand_kwargs() does with each dict: keyword arguments of the send operator.
    op = SplitAudienceOperator(
        task_id="split",
        recipients=USERS[:300],
        experiment="exp",
        shares={"a": 0.5, "b": 0.5},
        output_path=str(tmp_path),
        variant_kwargs={
            name: {"send_id": f"s-{name}", "messages": {"email": {"subject": name}}} for name in "ab"
        },
    )
    for kwargs in op.execute({"ti": mock.MagicMock()}):
        send = SendMessagesOperator(task_id=f"send-{kwargs['send_id']}", campaign_id="c", **kwargs)
        assert len(list(iter_recipients(send.recipients, "users"))) > 0


@pytest.mark.parametrize(
    ("variant_kwargs", "message"),
    [
        ({"c": {"send_id": "x"}}, "variant_kwargs names variant\\(s\\) 'c' that the shares do not"),
        ({"a": {"recipients": ["x"]}}, "variant_kwargs\\['a'\\] sets recipients"),
        ({"a": "send-1"}, "variant_kwargs\\['a'\\] must be an object"),
        (["a"], "variant_kwargs must map variant names"),
    ],
)
def test_operator_refuses_variant_kwargs_it_cannot_use(
    variant_kwargs: Any, message: str, tmp_path: Path
) -> None:
    op = SplitAudienceOperator(
        task_id="split",
        recipients=USERS[:10],
        experiment="exp",
        shares={"a": 0.5, "b": 0.5},
        output_path=str(tmp_path),
        variant_kwargs=variant_kwargs,
    )
    with pytest.raises(BrazeValidationError, match=message):
        op.execute({"ti": mock.MagicMock()})
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_operator_refuses_an_unknown_recipient_kind() -> None:
    with pytest.raises(ValueError, match="recipient_kind must be 'users' or 'recipients'"):
        SplitAudienceOperator(
            task_id="s",
            recipients=[],
            experiment="e",
            shares={"a": 1.0},
            output_path="/tmp/x",
            recipient_kind="emails",
        )


def test_split_reads_and_writes_object_storage_paths(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    source = ObjectStoragePath(f"file://{tmp_path}/in/audience.jsonl")
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text("".join(json.dumps(u) + "\n" for u in USERS[:1000]))
    folder = ObjectStoragePath(f"file://{tmp_path}/out")
    variants = split_audience(source, experiment="exp", shares=SHARES, output_path=folder)
    assert [v.recipients for v in variants] == [f"file://{tmp_path}/out/{n}.jsonl" for n in SHARES]
    read = [u for v in variants for u in iter_recipients(v.recipients, "users")]
    assert sorted(read) == USERS[:1000]


def test_one_inbox_lands_in_one_variant_however_its_address_is_written(tmp_path: Path) -> None:
    """The split, the duplicate pass and the sandbox share one identity: an email address in
    another case (or with spaces around it) is the same person, so the same variant."""
    written = []
    for n in range(200):
        for form in (f"user{n}@example.com", f"User{n}@Example.COM", f" USER{n}@EXAMPLE.COM "):
            written.append({"email": form, "prioritization": ["identified"]})
    out = split_audience(
        written,
        experiment="case",
        shares={"a": 0.5, "b": 0.5},
        output_path=tmp_path,
        recipient_kind="recipients",
    )
    variant_of: dict[str, set[str]] = {}
    for variant in out:
        for recipient in iter_recipients(variant.recipients, "recipients"):
            variant_of.setdefault(recipient["email"].strip().lower(), set()).add(variant.variant)
    assert len(variant_of) == 200
    assert all(len(names) == 1 for names in variant_of.values())
    assert {name for names in variant_of.values() for name in names} == {"a", "b"}


# --------------------------------------------------------------------------- planning


def textbook_sample_size(p1: float, p2: float, alpha: float, power: float) -> float:
    """Per-group n of the two-sided two-proportion test (Fleiss, no continuity correction),
    written out from the textbook, independently of the code under test."""
    normal = NormalDist()
    z_a, z_b = normal.inv_cdf(1 - alpha / 2), normal.inv_cdf(power)
    pbar = (p1 + p2) / 2
    root = z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return root**2 / (p2 - p1) ** 2


def test_the_classic_two_points_at_ten_percent_needs_3841_a_group() -> None:
    # 10 % vs 12 %, alpha 0.05 two-sided, 80 % power: the textbook 3,841 per group.
    assert math.ceil(textbook_sample_size(0.10, 0.12, 0.05, 0.8)) == 3841
    effects = minimum_detectable_effect(2 * 3841, {"control": 0.5, "b": 0.5}, 0.10)
    assert list(effects) == ["b"]
    assert effects["b"] == pytest.approx(0.02, abs=2e-5)
    # At the effect found, the textbook formula asks for exactly the group size given.
    assert effects["b"] is not None
    assert textbook_sample_size(0.10, 0.10 + effects["b"], 0.05, 0.8) == pytest.approx(3841, rel=1e-9)


def test_more_variants_share_alpha_bonferroni() -> None:
    shares = {"control": 0.2, "a": 0.4, "b": 0.4}
    default = minimum_detectable_effect(100_000, shares, 0.05)
    one = minimum_detectable_effect(100_000, shares, 0.05, comparisons=1)
    eight = minimum_detectable_effect(100_000, shares, 0.05, comparisons=8, power=0.9)
    assert default == minimum_detectable_effect(100_000, shares, 0.05, comparisons=2)
    assert one["a"] is not None
    assert default["a"] is not None
    assert eight["a"] is not None
    assert one["a"] < default["a"] < eight["a"]
    assert default["a"] == default["b"]
    # Unequal groups (20 000 vs 40 000) against the general formula, written out here.
    normal = NormalDist()
    z_a, z_b = normal.inv_cdf(1 - 0.05 / 4), normal.inv_cdf(0.8)
    p1, p2, n1, n2 = 0.05, 0.05 + default["a"], 20_000, 40_000
    pbar = (n1 * p1 + n2 * p2) / (n1 + n2)
    needed = z_a * math.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n2)) + z_b * math.sqrt(
        p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    )
    assert needed == pytest.approx(p2 - p1, rel=1e-9)


def test_an_effect_beyond_reach_is_none() -> None:
    assert minimum_detectable_effect(4, {"control": 0.5, "a": 0.5}, 0.5) == {"a": None}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline_rate": 0}, "baseline_rate must be above 0 and below 1"),
        ({"baseline_rate": 1.0}, "baseline_rate must be above 0 and below 1"),
        ({"power": 1}, "power must be above 0 and below 1"),
        ({"power": 0}, "power must be above 0 and below 1"),
        ({"audience_size": 0}, "audience_size must be a positive number"),
        ({"comparisons": 0}, "comparisons must be a positive whole number"),
        ({"shares": {"control": 0.5, "a": 0.4}}, "The shares must add up to 1"),
        ({"shares": {"ctrl": 0.5, "a": 0.5}}, "The control variant 'control' is not one"),
        ({"shares": {"control": 1.0}}, "at least one variant besides the control"),
    ],
)
def test_bad_planning_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"audience_size": 1000, "shares": SHARES, "baseline_rate": 0.1, **kwargs}
    with pytest.raises(BrazeValidationError, match=message):
        minimum_detectable_effect(**arguments)
