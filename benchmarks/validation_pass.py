"""The pass over the recipients before a send: today's (check, de-duplicate, spool, fingerprint)
against the previous release's (check and count only), on 1,000,000 recipients, side by side.

Both read the same JSON-lines and CSV files in this process, alternating over a few rounds; the
script prints the median time of each and their ratio per format (target: at most 1.5).

    python benchmarks/validation_pass.py [--recipients 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, quiet_airflow


def write_files(folder: Path, count: int) -> dict[str, Path]:
    jsonl, csv = folder / "audience.jsonl", folder / "audience.csv"
    with jsonl.open("w") as fh:
        for number in range(count):
            fh.write(f'"bench-user-{number:07d}"\n')
    with csv.open("w") as fh:
        fh.write("external_user_id\n")
        for number in range(count):
            fh.write(f"bench-user-{number:07d}\n")
    return {"JSON lines": jsonl, "CSV": csv}


def previous_pass(path: Path) -> int:
    """What the previous release read before sending: every recipient checked, then counted."""
    from airflow_provider_braze.recipients import iter_recipients

    return sum(1 for _ in iter_recipients(str(path), "users"))


def current_pass(path: Path) -> int:
    from airflow_provider_braze.delivery import read_audience

    with read_audience(str(path), "users") as audience:
        return audience.unique


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    quiet_airflow(tempfile.mkdtemp(prefix="braze-bench-home-"))
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="braze-bench-") as tmp:
        files = write_files(Path(tmp), args.recipients)
        for label, path in files.items():
            timings: dict[str, list[float]] = {"previous": [], "current": []}
            for _ in range(args.rounds):
                for name, run in (("previous", previous_pass), ("current", current_pass)):
                    start = time.perf_counter()
                    assert run(path) == args.recipients
                    timings[name].append(time.perf_counter() - start)
            results[label] = timings

    print(machine())
    print(f"pass over {args.recipients:,} recipients before sending (median of {args.rounds} rounds):")
    for label, timings in results.items():
        previous = statistics.median(timings["previous"])
        current = statistics.median(timings["current"])
        ratio = current / previous
        verdict = "met" if ratio <= 1.5 else "NOT met"
        print(
            f"  {label}: check and de-duplicate, spool, fingerprint {current:.2f} s; check only (previous "
            f"release) {previous:.2f} s; ratio {ratio:.2f} (target <= 1.5: {verdict})"
        )


if __name__ == "__main__":
    main()
