"""Content experiments: split an audience into named variants, deterministically and streamed.

Each recipient goes to a variant by a stable hash of who it is (its external user ID, alias or
email, as :func:`airflow_provider_braze.identity.recipient_key` writes its identity: an email
address in any case is one person) salted with the experiment's
name: the same person always lands in the same variant of the same experiment, in any process,
whatever ``PYTHONHASHSEED``; another experiment name reshuffles everyone independently.

The audience is read one recipient at a time and written to one JSON-lines file per variant as
it goes, so memory does not grow with the audience.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_braze.exceptions import BrazeError, BrazeValidationError
from airflow_provider_braze.identity import recipient_key
from airflow_provider_braze.recipients import RecipientKind, iter_recipients
from airflow_provider_braze.storage import open_for_writing, storage_path
from airflow_provider_braze.validation import is_number

#: Variant names become file names and appear in tables: letters, digits, ``_`` and ``-``.
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # use fullmatch
#: How far the shares' sum may be from 1 (floating-point rounding of shares like 1/3).
SHARE_TOLERANCE = 1e-6
_SCALE = 2.0**64


@dataclass(frozen=True)
class VariantFile:
    """One variant of a split: its name, share, where its recipients were written, how many."""

    variant: str
    share: float
    recipients: str
    count: int


def check_shares(shares: Any, *, control: str | None = None) -> dict[str, float]:
    """``shares`` checked: a mapping of variant name to a share in (0, 1], summing to 1. A JSON
    object in a string (a rendered template) is read as the mapping.

    :param control: Optional. A variant that must be among the shares.
    """
    if isinstance(shares, str) and shares.lstrip().startswith("{"):
        import json

        try:
            shares = json.loads(shares)
        except ValueError as err:
            raise BrazeValidationError(f"shares is not a JSON object: {err}") from err
    if not isinstance(shares, Mapping) or not shares:
        raise BrazeValidationError(
            'shares must map each variant name to its share, e.g. {"control": 0.1, "a": 0.45, '
            f'"b": 0.45}}; got {shares!r}.'
        )
    checked: dict[str, float] = {}
    for name, share in shares.items():
        if not isinstance(name, str) or not VARIANT_NAME.fullmatch(name):
            raise BrazeValidationError(
                f"Variant name {name!r} must be 1 to 64 letters, digits, '_' or '-', starting with a "
                "letter or digit (it names the variant's file)."
            )
        if not is_number(share):
            raise BrazeValidationError(f"The share of variant {name!r} must be a number, got {share!r}.")
        if not 0 < share <= 1:
            raise BrazeValidationError(
                f"The share of variant {name!r} must be more than 0 and at most 1, got {share!r}."
            )
        same = next((other for other in checked if other.lower() == name.lower()), None)
        if same is not None:
            raise BrazeValidationError(
                f"Variant names {same!r} and {name!r} differ only in letter case: their files would be "
                "one file on case-insensitive storage. Use names that differ in more than case."
            )
        checked[name] = float(share)
    total = math.fsum(checked.values())
    if abs(total - 1) > SHARE_TOLERANCE:
        listed = ", ".join(f"{name}={share:g}" for name, share in checked.items())
        raise BrazeValidationError(f"The shares must add up to 1, got {total:g} ({listed}).")
    if control is not None and control not in checked:
        raise BrazeValidationError(
            f"The control variant {control!r} is not one of the shares' variants: {', '.join(checked)}."
        )
    return checked


def check_experiment_name(experiment: Any) -> str:
    """The experiment's name (the hash salt), trimmed: a string that is not empty or blank.

    Leading and trailing whitespace is dropped, so ``"exp "`` (a stray space in a template)
    splits exactly as ``"exp"``.
    """
    if not isinstance(experiment, str) or not experiment.strip():
        raise BrazeValidationError(
            "experiment must be a non-empty name (it salts the split: the same name always gives "
            f"the same split), got {experiment!r}."
        )
    return experiment.strip()


def bucket(experiment: str, key: str) -> float:
    """Where ``key`` falls in [0, 1) for ``experiment``: BLAKE2b of both, not Python's ``hash``
    (which changes with every process)."""
    digest = hashlib.blake2b(f"{experiment}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


class Assigner:
    """Assigns recipient keys to variants by their bucket and the shares' cumulative bounds.

    The buckets are laid out in the order of the sorted variant names, not the order the
    shares were written in: ``{"control": .1, "a": .45, "b": .45}`` and the same shares in
    another order assign everyone alike (a ``[0, .45)``, b ``[.45, .9)``, control ``[.9, 1)``).
    """

    def __init__(self, experiment: str, shares: Mapping[str, float]) -> None:
        self.experiment = check_experiment_name(experiment)
        shares = check_shares(shares)
        self.names = sorted(shares)
        total = math.fsum(shares.values())
        bounds, running = [], 0.0
        for name in self.names:
            running += shares[name] / total
            bounds.append(running)
        bounds[-1] = 1.0  # whatever the rounding, every bucket below 1 has a variant
        self._bounds = bounds

    def variant_of(self, key: str) -> str:
        point = bucket(self.experiment, key)
        for name, bound in zip(self.names, self._bounds, strict=True):
            if point < bound:
                return name
        return self.names[-1]  # pragma: no cover - bounds[-1] is 1.0 and point < 1


def split_audience(
    recipients: Any,
    *,
    experiment: str,
    shares: Mapping[str, float],
    output_path: Any,
    recipient_kind: RecipientKind = "users",
    recipients_format: str | None = None,
    allow_empty_variants: bool = False,
) -> list[VariantFile]:
    """Split ``recipients`` into one JSON-lines file per variant, ``<output_path>/<variant>.jsonl``.

    Recipients are read, checked and written one at a time (bounded memory); each line is the
    recipient as the send operators take it. Files of an earlier try are overwritten whole: the
    split is deterministic, so a retry writes the same files.

    :param recipients: Any recipient source the send operators accept.
    :param experiment: The experiment's name, salting the hash.
    :param shares: Variant name -> share; the shares add up to 1.
    :param output_path: A folder: local path or ObjectStoragePath URL.
    :param recipient_kind: ``users`` (for /messages/send) or ``recipients`` (triggered campaigns).
    :param allow_empty_variants: By default a variant that gets nobody is an error.
    :return: The variants in the order of ``shares``.
    """
    assigner = Assigner(experiment, shares)
    checked = check_shares(shares)
    order = list(checked)
    if output_path is None or (isinstance(output_path, str) and not output_path.strip()):
        raise BrazeValidationError("output_path must name a folder for the variants' files.")
    folder = storage_path(output_path)
    paths = {name: _child(folder, f"{name}.jsonl") for name in order}
    counts = dict.fromkeys(order, 0)
    handles: dict[str, Any] = {}
    try:
        for name, path in paths.items():
            handles[name] = _open_for_writing(path)
        for recipient in iter_recipients(recipients, recipient_kind, file_format=recipients_format):
            name = assigner.variant_of(recipient_key(recipient))
            handles[name].write(json.dumps(recipient, separators=(",", ":"), ensure_ascii=False) + "\n")
            counts[name] += 1
    finally:
        for handle in handles.values():
            handle.close()
    empty = [name for name, count in counts.items() if count == 0]
    if empty and not allow_empty_variants:
        total = sum(counts.values())
        raise BrazeValidationError(
            f"Variant(s) {', '.join(empty)} got no recipients out of {total}: the audience is too "
            "small for these shares (or empty). Use a larger audience or larger shares, or pass "
            "allow_empty_variants=True."
        )
    return [
        VariantFile(variant=name, share=checked[name], recipients=str(paths[name]), count=counts[name])
        for name in order
    ]


def _child(folder: Any, name: str) -> Any:
    if isinstance(folder, (str, os.PathLike)):
        return os.path.join(os.fspath(folder), name)
    return folder / name


def _open_for_writing(path: Any) -> Any:
    try:
        return open_for_writing(path)
    except OSError as err:
        raise BrazeError(f"Cannot write the variant file {path}: {err}") from err


def minimum_detectable_effect(
    audience_size: Any,
    shares: Mapping[str, float],
    baseline_rate: Any,
    *,
    confidence: float = 0.95,
    power: float = 0.8,
    comparisons: int | None = None,
    control: str = "control",
) -> dict[str, float | None]:
    """Each non-control variant's minimum detectable absolute effect against ``control``.

    The smallest increase ``delta`` of the rate over ``baseline_rate`` that a two-sided
    two-proportion z-test (pooled, as :class:`~airflow_provider_braze.comparison.Comparison`
    runs it) detects with probability ``power``, for the group sizes the shares give the
    audience: the textbook normal-approximation formula (Fleiss, without continuity correction)
    ``z_alpha * sqrt(pbar (1 - pbar) (1/n_c + 1/n_v)) + z_power * sqrt(p1 q1 / n_c + p2 q2 / n_v)
    = delta`` with ``p1 = baseline_rate``, ``p2 = baseline_rate + delta`` and ``pbar`` their
    size-weighted mean, solved for ``delta`` by bisection (not the variance at the baseline
    alone, which understates the effect a little for rising rates).

    :param audience_size: How many recipients are split.
    :param shares: Variant name -> share, as for the split.
    :param baseline_rate: The control's expected rate, in (0, 1).
    :param confidence: 1 - alpha of the test (two-sided).
    :param power: The probability to detect the effect, in (0, 1).
    :param comparisons: The number of comparisons alpha is divided among (Bonferroni). By
        default the number of non-control variants (one metric each); pass 1 for no adjustment,
        or variants x metrics to match the Holm-adjusted table of ``CompareSendsOperator``
        (Holm is never less powerful than Bonferroni, so the figure is then on the safe side).
    :param control: The control variant.
    :return: Variant -> effect in rate units (0.02 is 2 points); None when even a rate of 1
        would not be detected.
    """
    from statistics import NormalDist

    checked = check_shares(shares, control=control)
    if not is_number(audience_size) or audience_size <= 0:
        raise BrazeValidationError(f"audience_size must be a positive number, got {audience_size!r}.")
    if not is_number(baseline_rate) or not 0 < baseline_rate < 1:
        raise BrazeValidationError(f"baseline_rate must be above 0 and below 1, got {baseline_rate!r}.")
    if not is_number(power) or not 0 < power < 1:
        raise BrazeValidationError(f"power must be above 0 and below 1, got {power!r}.")
    if not is_number(confidence) or not 0 < confidence < 1:
        raise BrazeValidationError(f"confidence must be above 0 and below 1, got {confidence!r}.")
    others = [name for name in checked if name != control]
    if not others:
        raise BrazeValidationError("The shares need at least one variant besides the control.")
    if comparisons is None:
        comparisons = len(others)
    if isinstance(comparisons, bool) or not isinstance(comparisons, int) or comparisons < 1:
        raise BrazeValidationError(f"comparisons must be a positive whole number, got {comparisons!r}.")
    alpha = (1 - confidence) / comparisons
    z_alpha = NormalDist().inv_cdf(1 - alpha / 2)
    z_power = NormalDist().inv_cdf(power)
    p1 = float(baseline_rate)
    n_control = audience_size * checked[control]

    def shortfall(delta: float, n_variant: float) -> float:
        p2 = p1 + delta
        pooled = (n_control * p1 + n_variant * p2) / (n_control + n_variant)
        needed = z_alpha * math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_variant))
        needed += z_power * math.sqrt(p1 * (1 - p1) / n_control + p2 * (1 - p2) / n_variant)
        return needed - delta

    effects: dict[str, float | None] = {}
    for name in others:
        n_variant = audience_size * checked[name]
        low, high = 0.0, 1 - p1
        if shortfall(high, n_variant) > 0:
            effects[name] = None
            continue
        for _ in range(200):  # bisection to the float's precision
            middle = (low + high) / 2
            if middle in (low, high):
                break
            if shortfall(middle, n_variant) > 0:
                low = middle
            else:
                high = middle
        effects[name] = high
    return effects
