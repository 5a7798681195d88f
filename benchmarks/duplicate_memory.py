"""The duplicate pass: its memory with many repeated recipients, and its time.

Memory: peak RSS of reading 2,000,000 rows in which every ID comes twice (1,000,000 repeated
entries) against 1,000,000 rows of distinct IDs, each through read_audience() and all its
batches in a fresh interpreter; both hold 1,000,000 distinct recipients, so the ratio shows what
repeats cost (target: under 1.25). A third run of 10,000 rows gives the fixed part, and with it
the memory per distinct recipient.

Time: the pass over 1,000,000 recipients before sending (check, spool, fingerprint and find
duplicates: read_audience) against the check-only pass (iter_recipients), alternating in one
interpreter over a few rounds (target: at most 1.5), for distinct IDs and for IDs that each come
twice. Each ratio is printed with PASS or FAIL against 1.5: the ratio of the fastest CPU times
(other work on a shared machine only ever adds time, to one pass or the other), and the ratio of
the medians.

    python benchmarks/duplicate_memory.py [--distinct 1000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine

MEMORY_CHILD = r"""
import json, resource, sys, time
spec = json.loads(sys.argv[1])
from airflow_provider_braze.delivery import read_audience
started = time.perf_counter()
with read_audience(spec["file"], "users") as audience:
    sent = sum(len(batch) for batch in audience.batches())
    read, unique = audience.read, audience.unique
elapsed = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"read": read, "unique": unique, "sent": sent, "seconds": elapsed, "peak_kib": peak_kib}))
"""

TIME_CHILD = r"""
import json, statistics, sys, time
spec = json.loads(sys.argv[1])
from airflow_provider_braze.delivery import read_audience
from airflow_provider_braze.recipients import iter_recipients

def check_only(path):
    return sum(1 for _ in iter_recipients(path, "users"))

def full_pass(path):
    with read_audience(path, "users") as audience:
        return audience.read

results = {}
for path in spec["files"]:
    timings = {"check": ([], []), "full": ([], [])}
    for _ in range(spec["rounds"]):
        for name, run in (("check", check_only), ("full", full_pass)):
            cpu, wall = time.process_time(), time.perf_counter()
            assert run(path) == spec["rows"]
            timings[name][0].append(time.process_time() - cpu)
            timings[name][1].append(time.perf_counter() - wall)
    results[path] = {
        name: {"fastest": min(cpu), "median": statistics.median(cpu), "wall": statistics.median(wall)}
        for name, (cpu, wall) in timings.items()
    }
print(json.dumps(results))
"""


def write_ids(path: Path, ids: range, times: int) -> None:
    """A JSON-lines audience: the IDs in order, then again in order (``times`` in all)."""
    with path.open("w") as fh:
        for _ in range(times):
            for number in ids:
                fh.write(f'"bench-user-{number:07d}"\n')


def child(code: str, spec: dict[str, object], workdir: Path) -> dict[str, object]:
    # The spool goes under the benchmark's own folder, removed with it.
    env = {**os.environ, "TMPDIR": str(workdir), "AIRFLOW__CORE__UNIT_TEST_MODE": "True"}
    env["AIRFLOW_HOME"] = str(workdir / "home")
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"the benchmark's child failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distinct", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = args.distinct

    with tempfile.TemporaryDirectory(prefix="braze-bench-") as tmp:
        workdir = Path(tmp)
        files = {
            "small": (workdir / "small.jsonl", range(args.small), 1),
            "distinct": (workdir / "distinct.jsonl", range(n), 1),
            "twice": (workdir / "twice.jsonl", range(n), 2),
            "half-twice": (workdir / "half-twice.jsonl", range(n // 2), 2),
        }
        for path, ids, times in files.values():
            write_ids(path, ids, times)
        memory = {}
        for label in ("small", "distinct", "twice"):
            path, ids, times = files[label]
            memory[label] = child(MEMORY_CHILD, {"file": str(path)}, workdir)
            assert memory[label]["read"] == len(ids) * times, memory[label]
            assert memory[label]["unique"] == memory[label]["sent"] == len(ids), memory[label]
        timed = [str(files["distinct"][0]), str(files["half-twice"][0])]
        timing = child(TIME_CHILD, {"files": timed, "rows": n, "rounds": args.rounds}, workdir)
        leftovers = [p.name for p in workdir.iterdir() if p.name.startswith("braze-spool-")]
        spool_files = [f for d in leftovers for _, _, names in os.walk(workdir / d) for f in names]

    print(machine())
    kib = {label: float(result["peak_kib"]) for label, result in memory.items()}  # type: ignore[arg-type]
    for label, rows, distinct in (("small", args.small, args.small), ("distinct", n, n), ("twice", 2 * n, n)):
        seconds = float(memory[label]["seconds"])  # type: ignore[arg-type]
        print(
            f"{rows:>9,} rows, {distinct:>9,} distinct: peak RSS {kib[label] / 1024:7.1f} MiB "
            f"({seconds:5.1f} s, batches included)"
        )
    ratio = kib["twice"] / kib["distinct"]
    per_distinct = (kib["distinct"] - kib["small"]) * 1024 / (n - args.small)
    print(
        f"peak RSS ratio {2 * n:,} rows (each ID twice) / {n:,} distinct rows: {ratio:.3f} "
        f"{'PASS' if ratio < 1.25 else 'FAIL'} against 1.25; "
        f"about {per_distinct:.1f} bytes per distinct recipient over the {args.small:,}-row run"
    )
    print(f"pass over {n:,} recipients before sending, {args.rounds} rounds (CPU seconds):")
    for path, label in zip(timed, ("distinct IDs", "each ID twice"), strict=True):
        full, check = timing[path]["full"], timing[path]["check"]  # type: ignore[index]
        ratio = full["fastest"] / check["fastest"]
        median = full["median"] / check["median"]
        wall = full["wall"] / check["wall"]
        verdict = "PASS" if ratio <= 1.5 else "FAIL"
        verdict += f" against 1.5 (medians: {'PASS' if median <= 1.5 else 'FAIL'})"
        print(
            f"  {label}: check, spool, fingerprint and find duplicates {full['fastest']:.2f} (median "
            f"{full['median']:.2f}), check only {check['fastest']:.2f} (median {check['median']:.2f}): "
            f"ratio {ratio:.2f} fastest, {median:.2f} medians (wall clock {wall:.2f}): {verdict}"
        )
    print(f"spool files left behind: {len(spool_files)}")


if __name__ == "__main__":
    main()
