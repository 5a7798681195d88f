"""The documentation's own consistency, without building it (scripts/docs builds it with Sphinx).

README.md stays short; every example a docs page includes exists between its markers (so the docs
show the example DAGs the tests run); every page is reachable from a toctree; README's links lead
to files that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
PAGES = [page for page in PAGES if "_build" not in page.relative_to(DOCS).parts]

LITERALINCLUDE = re.compile(r"```\{literalinclude\}\s+(?P<path>\S+)\n(?P<options>(?:[ \t]*:[^\n]*\n)*)")
OPTION = re.compile(r"^[ \t]*:(?P<name>[a-z-]+):[ \t]*(?P<value>.*?)[ \t]*$", re.MULTILINE)
TOCTREE = re.compile(r"```\{toctree\}\n(?P<body>.*?)```", re.DOTALL)
MARKDOWN_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def includes() -> list[tuple[Path, Path, dict[str, str]]]:
    found = []
    for page in PAGES:
        for match in LITERALINCLUDE.finditer(page.read_text(encoding="utf-8")):
            options = {m["name"]: unquote(m["value"]) for m in OPTION.finditer(match["options"])}
            found.append((page, (page.parent / match["path"]).resolve(), options))
    return found


def test_readme_is_at_most_300_lines() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move the detail to a page under docs/"


def test_docs_have_pages_and_examples() -> None:
    assert (DOCS / "index.md").is_file()
    assert len(includes()) >= 10


@pytest.mark.parametrize(
    ("page", "source", "options"),
    includes(),
    ids=lambda value: str(value.relative_to(REPO)) if isinstance(value, Path) else "",
)
def test_every_literalinclude_names_markers_that_exist(
    page: Path, source: Path, options: dict[str, str]
) -> None:
    assert source.is_file(), f"{page.relative_to(REPO)} includes {source}, which does not exist"
    assert source.is_relative_to(REPO / "example_dags"), "docs examples come from example_dags/"
    text = source.read_text(encoding="utf-8")
    start, end = options.get("start-after"), options.get("end-before")
    assert start, f"{page.relative_to(REPO)}: include {source.name} from a [START ...] marker"
    assert end, f"{page.relative_to(REPO)}: include {source.name} up to an [END ...] marker"
    assert re.fullmatch(r"\[START \w+\]", start), start
    assert end == start.replace("[START ", "[END ", 1), (start, end)
    assert text.count(f"# {start}\n") == 1, f"{source.name} has no single '# {start}' line"
    assert text.count(f"# {end}\n") == 1, f"{source.name} has no single '# {end}' line"
    assert text.index(start) < text.index(end)


def test_every_operator_sensor_and_trigger_page_includes_an_example() -> None:
    pages = {page for page, _, _ in includes()}
    for folder in ("operators", "sensors", "triggers"):
        for page in (DOCS / folder).glob("*.md"):
            assert page in pages, f"{page.relative_to(REPO)} includes no example from example_dags/"


def test_every_docs_page_is_in_a_toctree() -> None:
    listed = {DOCS / "index.md"}
    for page in PAGES:
        for tree in TOCTREE.finditer(page.read_text(encoding="utf-8")):
            for line in tree["body"].splitlines():
                entry = line.strip()
                if entry and not entry.startswith(":"):
                    target = (page.parent / f"{entry}.md").resolve()
                    assert target.is_file(), f"{page.relative_to(REPO)}'s toctree lists {entry}: no such page"
                    listed.add(target)
    missing = sorted(str(page.relative_to(REPO)) for page in PAGES if page.resolve() not in listed)
    assert not missing, f"pages in no toctree: {missing}"


def test_readme_relative_links_point_at_files_that_exist() -> None:
    targets = MARKDOWN_LINK.findall((REPO / "README.md").read_text(encoding="utf-8"))
    relative = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert relative, "README.md links to no docs page"
    for target in relative:
        path = target.split("#", 1)[0]
        assert path, f"README.md links to an anchor of its own ({target}): link the docs page instead"
        assert (REPO / path).exists(), f"README.md links to {target}, which does not exist"


def test_the_readme_quickstart_builds_a_dag_whose_send_ids_differ_per_run() -> None:
    """The Quickstart's code is a DAG as written: it builds, its tasks are chained as the text
    says, and its send ID template gives two runs of one day two send IDs."""
    from types import SimpleNamespace

    text = (REPO / "README.md").read_text(encoding="utf-8")
    quickstart = text[text.index("## Quickstart") :]
    start = quickstart.index("```python\n") + len("```python\n")
    code = quickstart[start : quickstart.index("\n```", start)]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md (Quickstart)", "exec"), namespace)  # noqa: S102 - our own README
    dag = namespace["send"].dag  # type: ignore[attr-defined]
    assert dag.task_dict.keys() == {"create_send_id", "send", "wait_for_analytics", "fetch_analytics"}
    assert dag.task_dict["send"].downstream_task_ids == {"wait_for_analytics"}
    assert dag.task_dict["wait_for_analytics"].downstream_task_ids == {"fetch_analytics"}
    assert "create_send_id" in dag.task_dict["send"].upstream_task_ids
    from datetime import datetime, timezone

    from jinja2 import Environment

    template = Environment(autoescape=False).from_string(  # noqa: S701 - a send ID, not HTML
        dag.task_dict["create_send_id"].send_id
    )
    macros = dag.user_defined_macros or {}
    same_day = datetime(2026, 12, 3, 9, tzinfo=timezone.utc)
    ids = {
        template.render(**macros, dag_run=SimpleNamespace(run_id=run_id, run_after=same_day))
        for run_id in ("manual__2026-12-03T09:00:00+00:00", "manual__2026-12-03T09:00:01+00:00")
    }
    assert len(ids) == 2
    assert all(i.startswith("newsletter-20261203-") for i in ids)


def test_the_readmes_planning_example_prints_what_it_says() -> None:
    """The Experiments section's call gives the figure its comment states, and the peeking
    figure it quotes is the one docs/experiments.md's simulation table gives."""
    import re

    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Experiments in ten lines") :]
    start = section.index("```python\n") + len("```python\n")
    code = section[start : section.index("\n```", start)]
    call = next(line for line in code.splitlines() if line.startswith("minimum_detectable_effect("))
    comment = next(line for line in code.splitlines() if line.startswith("# {"))
    namespace: dict[str, object] = {}
    exec(compile(code.replace(call, f"result = {call}"), "README.md (Experiments)", "exec"), namespace)  # noqa: S102
    result = namespace["result"]
    assert isinstance(result, dict)
    shown = dict(re.findall(r"'(\w+)': (0\.\d+)\.\.\.", comment))
    assert shown.keys() == result.keys()
    for name, prefix in shown.items():
        assert f"{result[name]:.10f}".startswith(prefix), (name, result[name], prefix)
    points = float(re.search(r": (\d+\.\d) points", comment).group(1))  # type: ignore[union-attr]
    assert round(100 * result["a"], 1) == points
    table = (REPO / "docs" / "experiments.md").read_text(encoding="utf-8")
    daily = re.search(r"daily looks \(days 1-7\) \| [\d,]+ of [\d,]+ \| \*\*(\d+\.\d) %\*\*", table)
    assert daily is not None
    quoted = f"5 % false positives into {round(float(daily.group(1)))} %"
    assert quoted in " ".join(section.split())
