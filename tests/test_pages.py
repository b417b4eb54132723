"""The registry of the book's pages (lth/pages.py) matches _toc.yml and notebooks/, and a page
is added by one registry entry: scripts/build_book.py plans it from PAGES alone. No training."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lth.pages import PAGES, Page, get_page
from lth.specs import PROFILES

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _load_build_book():
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_book = _load_build_book()


def _chapters() -> list[str]:
    """The chapters of _toc.yml, as page names (book/<name>)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [Path(chapter["file"]).name for chapter in toc["chapters"]]


def _default_profile(notebook: str) -> str | None:
    """The ``profile = ...`` default of a notebook's parameters cell (None if it has none)."""
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
    for node in ast.parse("".join(cell["source"])).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["profile"]:
            return ast.literal_eval(node.value)
    return None  # a page of a chosen profile only (criteria_conv) has no profile parameter


def test_the_registry_is_the_book_in_its_order():
    handwritten = [name for name in _chapters() if (ROOT / "book" / f"{name}.md").is_file()]
    assert handwritten == ["spec", "departures"]  # hand-written pages, not notebooks
    assert [page.name for page in PAGES] == [c for c in _chapters() if c not in handwritten]
    assert build_book.registry_problems() == []


def test_page_names_are_unique():
    names = [page.name for page in PAGES]
    assert len(set(names)) == len(names)


def test_every_page_has_its_notebook_and_every_notebook_a_page():
    for page in PAGES:
        assert (ROOT / "notebooks" / f"{page.notebook}.ipynb").is_file(), page.name
    assert {path.stem for path in NOTEBOOKS} <= {page.notebook for page in PAGES}


def test_every_page_is_described():
    for page in PAGES:
        assert page.paper is None or page.paper.startswith(("Figure", "Table")), page.name
        assert all(f.endswith(".png") and "/" not in f for f in page.figures), page.name
        committed = page.parameters.get("profile", _default_profile(page.notebook))
        if committed is None and page.target_profile is not None:  # its chosen profile only
            assert PROFILES.lookup(page.target_profile).chosen, page.name
        else:
            assert page.target_profile == committed, page.name
    figures = [figure for page in PAGES for figure in page.figures]
    assert len(set(figures)) == len(figures)  # no two pages write the same figure


def test_a_page_cannot_contradict_itself():
    with pytest.raises(ValueError, match="target_profile 'mid' but parameters set profile"):
        Page(name="x", notebook="criteria", parameters={"profile": "smoke"}, target_profile="mid")
    with pytest.raises(ValueError, match="not a PNG file name"):
        Page(name="x", notebook="criteria", figures=("book/figures/x.png",))
    assert Page(name="x", notebook="criteria", parameters={"profile": "smoke"}).target_profile == (
        "smoke"
    )


def test_get_page():
    assert get_page("criteria_conv2").notebook == "criteria"
    accepted = ", ".join(page.name for page in PAGES)
    with pytest.raises(ValueError) as info:
        get_page("critera")
    assert str(info.value) == f"unknown page 'critera'; accepted: {accepted}"
    assert accepted.startswith(
        "scorecard, criteria_plane, criteria, criteria_conv2, criteria_conv4, criteria_conv6, "
    )


def test_the_registry_imports_nothing_heavy():
    loaded = "sorted(m for m in sys.modules if m.split('.')[0] in ('lth', 'torch', 'numpy'))"
    code = f"import sys, lth.pages; print({loaded})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['lth', 'lth.pages']"


def test_the_build_executes_and_checks_what_the_registry_declares(monkeypatch, capsys):
    planned = build_book.planned_runs({})
    assert sorted(job.page for job in planned) == sorted(page.name for page in PAGES)
    for job in planned:
        page = get_page(job.page)
        assert job.source == ROOT / "notebooks" / f"{page.notebook}.ipynb"
        assert job.title == (page.title or "")
    monkeypatch.setattr(build_book, "FIGURES", ROOT / "tests" / "no-such-folder")
    problems = build_book.check_outputs(html=False)
    expected = [f"tests/no-such-folder/{f}" for page in PAGES for f in page.figures]
    assert [problem.split()[2] for problem in problems] == expected
    assert (
        problems[0]
        == "figure missing: tests/no-such-folder/criteria_plane.png (page criteria_plane)"
    )
    assert f"checked {len(expected)} figure(s) of {len(PAGES)} page(s)" in capsys.readouterr().out


def test_adding_a_page_is_one_registry_entry(monkeypatch):
    extra = Page(
        name="signs_conv4",
        notebook="signs",
        title="Figure 4 on Conv4: mask-1 actions",
        paper="Figure 4",
        parameters={"net": "conv4", "profile": "conv-short", "variants": ["rewind", "reinit"]},
        smoke={"variants": ["rewind"], "iterations": 5},
        figures=("signs_conv4.png",),
    )
    monkeypatch.setattr(build_book, "PAGES", (*PAGES, extra))

    planned = {job.page: job for job in build_book.planned_runs({})}
    job = planned["signs_conv4"]
    assert list(planned)[-2:] == [
        "signs_conv4",
        "scorecard",
    ]  # after the own pages; the scorecard last
    assert job.source == ROOT / "notebooks" / "signs.ipynb"
    assert job.title == "Figure 4 on Conv4: mask-1 actions"
    assert job.parameters == {
        "net": "conv4",
        "profile": "conv-short",
        "variants": ["rewind", "reinit"],
    }
    assert planned["signs"].parameters == {}  # the notebook's own page is unchanged

    smoke = build_book.planned_runs({"profile": "smoke", "seeds": [0]}, "smoke", "signs_conv4")
    assert [job.page for job in smoke] == ["signs_conv4"]
    assert smoke[0].parameters == {
        "net": "conv4",
        "profile": "smoke",  # the command line over the page's own
        "variants": ["rewind"],  # the smoke overrides over both
        "seeds": [0],
        "iterations": 5,
    }

    # the build's checks see it: its figure, and its missing _toc.yml line
    assert "book/figures/signs_conv4.png" in {
        str((build_book.FIGURES / f).relative_to(ROOT))
        for page in build_book.PAGES
        for f in page.figures
    }
    assert build_book.registry_problems() == [
        "lth/pages.py: page 'signs_conv4' is not in _toc.yml (add `  - file: book/signs_conv4`)"
    ]


def test_the_registry_check_names_what_is_missing(monkeypatch):
    criteria_conv2 = get_page("criteria_conv2")
    monkeypatch.setattr(build_book, "PAGES", tuple(p for p in PAGES if p.name != "table1"))
    assert build_book.registry_problems() == [
        "_toc.yml: chapter book/table1 is not a page in lth/pages.py (add a Page to PAGES)",
        "notebooks/table1.ipynb is used by no page in lth/pages.py (add a Page to PAGES)",
    ]
    moved = dataclasses.replace(criteria_conv2, notebook="criteria_v2")
    monkeypatch.setattr(
        build_book, "PAGES", tuple(moved if p is criteria_conv2 else p for p in PAGES)
    )
    assert build_book.registry_problems() == [
        "lth/pages.py: page 'criteria_conv2': notebook notebooks/criteria_v2.ipynb is missing"
    ]
    monkeypatch.setattr(build_book, "PAGES", (*PAGES, get_page("criteria")))
    assert build_book.registry_problems() == ["lth/pages.py: page 'criteria' is declared twice"]


def test_a_registry_problem_stops_the_build_before_anything_runs(monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("the registry must be checked before any notebook runs")

    monkeypatch.setattr(build_book, "execute", no_work)
    monkeypatch.setattr(build_book, "PAGES", PAGES[:-1])
    monkeypatch.setattr("sys.argv", ["build_book.py", "--check-only"])
    with pytest.raises(SystemExit) as exit_:
        build_book.main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("error: _toc.yml: chapter book/reproduce is not")


def test_a_page_shows_one_parameters_cell_with_the_values_it_ran_with():
    import nbformat

    notebook = nbformat.v4.new_notebook()
    own = nbformat.v4.new_code_cell(
        '# Parameters\nprofile = "mid"  # smoke | mid\nnet = "fc"\nseeds = None  # list of ints'
    )
    own.metadata["tags"] = ["parameters"]
    injected = nbformat.v4.new_code_cell('# Parameters\nprofile = "conv-short"\nnet = "fc"\n')
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells = [nbformat.v4.new_markdown_cell("# Title"), own, injected]
    build_book.one_parameters_cell(notebook)
    assert len(notebook.cells) == 2
    assert notebook.cells[1].source.splitlines() == [
        "# Parameters",
        'profile = "conv-short"  # this page\'s value (the notebook\'s default: "mid")',
        'net = "fc"',
        "seeds = None  # list of ints",
    ]
