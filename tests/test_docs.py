"""The README stays a short page a newcomer reads; everything else lives in docs/, and
`make bench` / `make load` publish their tables there, never in the README."""

import re
from pathlib import Path

import bench.__main__ as bench_main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
APPS = ["meshportal", "domains", "products", "governance", "usage", "agents", "demo", "backup"]
PLUMBING = {"migrations", "management", "commands", "templatetags", "__pycache__"}


def _markers(text: str) -> list[str]:
    return re.findall(r"<!-- (\w+):(?:start|end) -->", text)


def test_readme_is_short_and_says_how_to_run_and_test():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "make run" in readme and "make test" in readme
    assert _markers(readme) == []  # no generated tables


def test_every_relative_link_in_readme_and_docs_resolves():
    broken = []
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path = (page.parent / target).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_readme_links_every_page_in_docs():
    readme = (ROOT / "README.md").read_text()
    assert [p.name for p in sorted(DOCS.glob("*.md")) if f"(docs/{p.name})" not in readme] == []


def test_bench_and_load_tables_are_written_to_docs_benchmarks_not_the_readme(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    page = "intro\n<!-- bench:start -->\nold\n<!-- bench:end -->\nmid\n"
    page += "<!-- load:start -->\nold\n<!-- load:end -->\nend\n"
    (tmp_path / "README.md").write_text(page)
    (tmp_path / "docs" / "benchmarks.md").write_text(page)
    monkeypatch.setattr(bench_main, "ROOT", tmp_path)

    bench_main.update_benchmarks_doc("| bench table |\n")
    bench_main.update_benchmarks_doc("| load table |\n", "load")

    assert (tmp_path / "README.md").read_text() == page
    assert (tmp_path / "docs" / "benchmarks.md").read_text() == (
        "intro\n<!-- bench:start -->\n| bench table |\n<!-- bench:end -->\nmid\n"
        "<!-- load:start -->\n| load table |\n<!-- load:end -->\nend\n"
    )


def test_the_real_benchmarks_page_holds_both_tables():
    assert _markers((DOCS / "benchmarks.md").read_text()) == [
        "restore",
        "restore",
        "bench",
        "bench",
        "bulk",
        "bulk",
        "load",
        "load",
        "semantic",
        "semantic",
    ]


def test_the_code_map_names_every_package():
    """docs/architecture.md has a line for every app and feature sub-package, and names no
    package that does not exist (the map follows the tree)."""
    page = (DOCS / "architecture.md").read_text()
    packages = {
        str(init.parent.relative_to(ROOT))
        for app in APPS
        for init in (ROOT / app).rglob("__init__.py")
        if not PLUMBING & set(init.parent.relative_to(ROOT).parts)
    }
    mapped = set(re.findall(r"^\| `([a-z_/]+)/` \|", page, re.M))
    assert packages - mapped == set(), "packages missing from docs/architecture.md"
    assert mapped - packages == set(), "docs/architecture.md names packages that do not exist"
