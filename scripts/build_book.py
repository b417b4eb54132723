"""Build the book: execute every page's notebook with papermill, build the site, check figures.

    python scripts/build_book.py                         # committed profile -> _build/html
    python scripts/build_book.py --profile smoke --runs /tmp/runs
    python scripts/build_book.py --only criteria -p seeds "[0, 1, 2]"
    python scripts/build_book.py --check-only            # only check figures and pages

The pages are declared once, in lth/pages.py (PAGES): each page's notebook, parameters,
title, smoke overrides and figures. Steps:
0. the registry must match the repository: every page in _toc.yml and every _toc.yml chapter a
   page, every page's notebook in notebooks/ and every notebook there used by a page (exit 2).
1. each page is executed by papermill from notebooks/<notebook>.ipynb (kernel python3, CWD =
   repository root) into a temporary file; only a notebook that ran without error is moved to
   book/<page>.ipynb. A failed one is kept in _build/failed/ for inspection and the script stops
   (exit 1). The pages named after their notebook run first, by name, then the others in the
   order of PAGES.
2. `jupyter-book build . --all -W --keep-going` renders the executed copies (execution is off).
3. every PNG the pages declare (book/figures/<figure>) must exist and be a PNG, and every page
   in _toc.yml must have its HTML file.

Before step 1 every parameter is checked, for every notebook it goes to (lth/parameters.py): a
`-p` name no notebook to be executed declares is an error; a name goes only to the notebooks
that declare it (the names assigned in their `parameters` cell, with the kinds their
`check_notebook` call gives); `--only`, `--runs`, $LTH_RUNS, $LTH_CACHE and $LTH_DATA too. A bad
one stops the script before anything runs, with one line `error: ...` (exit 2).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import nbformat
import papermill
import yaml

from lth.pages import PAGES, Page
from lth.parameters import ParameterError, check_environment, check_parameters, unknown

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: Where the book is built: the repository root, or the folder given to --out (see use_site).
SITE = ROOT
BOOK = SITE / "book"
FIGURES = BOOK / "figures"
HTML = SITE / "_build" / "html"
FAILED = SITE / "_build" / "failed"


def use_site(out: Path) -> None:
    """Build the book in ``out`` instead of the repository root: the book's own files
    (``_config.yml``, ``_toc.yml``, the hand-written pages under ``book/``) are copied there,
    and the executed notebooks, their figures and the site are written there only, so a smoke
    build never touches the real book in ``book/`` and ``_build/html``."""
    global SITE, BOOK, FIGURES, HTML, FAILED
    SITE = out.resolve()
    BOOK, HTML, FAILED = SITE / "book", SITE / "_build" / "html", SITE / "_build" / "failed"
    FIGURES = BOOK / "figures"
    if SITE == ROOT:
        return
    shutil.rmtree(SITE, ignore_errors=True)
    BOOK.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copyfile(ROOT / name, SITE / name)
    for page in (ROOT / "book").glob("*.md"):
        shutil.copyfile(page, BOOK / page.name)


def real_book() -> dict[str, int]:
    """The real book's built files (executed pages, figures, site pages) with their modification
    times: a build in another folder must leave every one of them as it was."""
    files = [
        *ROOT.glob("book/*.ipynb"),
        *ROOT.glob("book/figures/*"),
        *ROOT.glob("_build/html/**/*.html"),
    ]
    return {shown(path): path.stat().st_mtime_ns for path in files}


def shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it, else as it is."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Job(NamedTuple):
    """One notebook execution: ``source`` run with ``parameters`` (checked), published as
    book/<page>.ipynb, its first heading replaced by ``title`` unless that is empty."""

    source: Path
    parameters: dict[str, object]
    page: str
    title: str


def parse_value(text: str) -> object:
    """A `-p` value read as YAML, like papermill's -y: `[0, 1]` a list, `1e-3` a float."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def notebook_kinds(source: Path) -> dict[str, str]:
    """The parameters ``source`` declares, name -> kind: the names assigned in its cell tagged
    ``parameters``, each with the kind the ``check_notebook(globals(), name="kind", ...)`` call
    in the next code cell gives it (the two must list the same names)."""
    cells = [c for c in nbformat.read(source, as_version=4).cells if c.cell_type == "code"]
    index = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    names = [
        target.id
        for node in ast.parse(cells[index].source).body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    ]
    calls = [
        node
        for node in ast.walk(ast.parse(cells[index + 1].source if index + 1 < len(cells) else ""))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "check_notebook"
    ]
    if not calls:
        raise RuntimeError(
            f"{source}: the code cell after `parameters` does not call check_notebook"
        )
    kinds = {kw.arg: ast.literal_eval(kw.value) for kw in calls[0].keywords}
    if sorted(kinds) != sorted(names):
        raise RuntimeError(
            f"{source}: the parameters cell declares {names}, check_notebook checks {list(kinds)}"
        )
    return kinds


def execution_order(pages: Sequence[Page]) -> list[Page]:
    """``pages`` in the order they are executed: the pages named after their notebook first, by
    name (the notebooks' order), then the others in registry order (each after its notebook's
    own page, whose run records and cache it may reuse), and last the pages that gather the
    others' records (``runs_last``: the scorecard)."""
    own = sorted((page for page in pages if page.name == page.notebook), key=lambda p: p.name)
    ordered = own + [page for page in pages if page.name != page.notebook]
    return [p for p in ordered if not p.runs_last] + [p for p in ordered if p.runs_last]


def planned_runs(
    parameters: dict[str, object], profile: str | None = None, only: str | None = None
) -> list[Job]:
    """The notebooks to execute, one :class:`Job` per page of :data:`PAGES`, every parameter
    checked before the first one runs. A page's parameters come first, then the command line's
    (--profile, -p), then, with --profile smoke, its smoke overrides; a notebook gets only the
    command line's parameters it declares. Raises :class:`ParameterError` for an unknown
    `--only` page or `-p` name, or a bad value."""
    ordered = execution_order(PAGES)
    names = [page.name for page in ordered]
    only = None if only is None else Path(only).stem
    if only is not None and only not in names:
        raise ParameterError("--only: " + unknown("notebook or page", only, names))
    planned = [
        (
            page,
            NOTEBOOKS / f"{page.notebook}.ipynb",
            {**page.parameters, **parameters, **(page.smoke if profile == "smoke" else {})},
        )
        for page in ordered
        if only in (None, page.name)
    ]
    kinds = {source: notebook_kinds(source) for source in {source for _, source, _ in planned}}
    declared = sorted(set().union(*kinds.values()))
    for name in parameters:
        if name not in declared:
            raise ParameterError("-p: " + unknown("parameter", name, declared, suggest=True))
    checked = []
    for page, source, given in planned:
        own = kinds[source]
        given = {k: v for k, v in given.items() if k in own or k not in parameters}
        try:
            given = check_parameters(own, given)
        except ParameterError as error:
            where = source.relative_to(ROOT)
            named = where if page.name == page.notebook else f"{page.name} ({where})"
            raise ParameterError(f"{named}: {error}") from None
        checked.append(Job(source, given, page.name, page.title or ""))
    return checked


_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_]\w*) = (?P<value>.*?)(?P<comment>\s+#.*)?$")


def one_parameters_cell(notebook) -> None:
    """Show the values a page ran with in its one parameters cell: papermill adds them as a
    second, "injected-parameters" cell; each of its values replaces the default in the
    notebook's own cell (which keeps its comments and says what the default was), and the
    injected cell is dropped."""
    tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
    injected = [i for i, t in enumerate(tags) if "injected-parameters" in t]
    own = [i for i, t in enumerate(tags) if "parameters" in t]
    if not injected or not own:
        return
    values = {}
    for line in notebook.cells[injected[0]].source.splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            values[match["name"]] = match["value"]
    lines = []
    for line in notebook.cells[own[0]].source.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match["name"] in values and values[match["name"]] != match["value"]:
            line = (
                f"{match['name']} = {values.pop(match['name'])}  # this page's value "
                f"(the notebook's default: {match['value']})"
            )
        elif match:
            values.pop(match["name"], None)
        lines.append(line)
    lines += [f"{name} = {value}  # this page's value" for name, value in values.items()]
    notebook.cells[own[0]].source = "\n".join(lines)
    del notebook.cells[injected[0]]


def execute(
    source: Path, parameters: dict[str, object], page: str | None = None, title: str = ""
) -> None:
    """Run one notebook with papermill; publish it to book/<page>.ipynb (default: the source's
    name) only if every cell succeeded; ``title`` (unless empty) replaces the first heading, and
    the line a page's notebook leaves in ``book/figures/<page>.status`` (its target profile
    still in progress, :func:`lth.report.target_profile_section`) is added to it."""
    name = source.relative_to(ROOT)
    target = BOOK / f"{page or source.stem}.ipynb"
    print(f"== executing {name} with parameters {parameters or '{}'}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / source.name
        try:
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters=parameters,
                kernel_name="python3",
                cwd=str(SITE),
                progress_bar=False,
                # the kernel runs on localhost only: its TCP warning is noise in every log
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except Exception as error:  # any failure stops the build, the notebook unpublished
            kept = ""
            if executed.exists():
                FAILED.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(executed, FAILED / target.name)
                kept = f"; partly executed copy: {shown(FAILED / target.name)}"
            print(f"\nFAILED: notebook {name}{kept}\n{error}", file=sys.stderr)
            sys.exit(1)
        status_file = FIGURES / f"{page or source.stem}.status"  # see lth.report
        status = status_file.read_text().strip() if status_file.exists() else ""
        notebook = nbformat.read(executed, as_version=4)
        one_parameters_cell(notebook)
        if title or status:
            first = notebook.cells[0]
            heading, rest = first.source.split("\n", 1)
            heading = f"# {title}" if title else heading
            first.source = heading + (f" ({status})" if status else "") + "\n" + rest
        nbformat.write(notebook, executed)
        shutil.move(str(executed), target)
    print(f"   -> {shown(target)}", flush=True)


def build_site() -> None:
    """Render the book from the repository root; warnings are errors."""
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", ".", "--all", "-W", "--keep-going"]
    print("== " + " ".join(command), flush=True)
    if subprocess.run(command, cwd=SITE).returncode != 0:
        print("\nFAILED: jupyter-book build (see the warnings above)", file=sys.stderr)
        sys.exit(1)


def toc_pages() -> list[str]:
    """The page paths named in _toc.yml (root and every `file:` entry), without suffix."""

    def walk(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [str(node[key]) for key in ("root", "file") if key in node]
            return found + [page for value in node.values() for page in walk(value)]
        if isinstance(node, list):
            return [page for item in node for page in walk(item)]
        return []

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [str(Path(page).with_suffix("")) for page in walk(toc)]


def registry_problems() -> list[str]:
    """The ways :data:`PAGES` (lth/pages.py) disagrees with the repository: a page twice, a page
    not in _toc.yml, a _toc.yml chapter that is no page (a hand-written book/<name>.md is
    allowed), a page whose notebook is missing, a notebook in notebooks/ that no page uses."""
    problems = []
    names = [page.name for page in PAGES]
    problems += [
        f"lth/pages.py: page {n!r} is declared twice"
        for n in sorted(set(names))
        if names.count(n) > 1
    ]
    root = str(Path(yaml.safe_load((ROOT / "_toc.yml").read_text())["root"]).with_suffix(""))
    chapters = [entry for entry in toc_pages() if entry != root]
    problems += [
        f"lth/pages.py: page {page.name!r} is not in _toc.yml (add `  - file: book/{page.name}`)"
        for page in PAGES
        if f"book/{page.name}" not in chapters
    ]
    problems += [
        f"_toc.yml: chapter {chapter} is not a page in lth/pages.py (add a Page to PAGES)"
        for chapter in chapters
        if chapter not in [f"book/{name}" for name in names]
        and not (ROOT / f"{chapter}.md").is_file()
    ]
    problems += [
        f"lth/pages.py: page {page.name!r}: notebook notebooks/{page.notebook}.ipynb is missing"
        for page in PAGES
        if not (NOTEBOOKS / f"{page.notebook}.ipynb").is_file()
    ]
    used = {page.notebook for page in PAGES}
    problems += [
        f"notebooks/{path.name} is used by no page in lth/pages.py (add a Page to PAGES)"
        for path in sorted(NOTEBOOKS.glob("*.ipynb"))
        if path.stem not in used
    ]
    return problems


def check_outputs(html: bool = True) -> list[str]:
    """Return the problems found: missing or broken figures, missing HTML pages."""
    problems = []
    figures = [(page.name, FIGURES / figure) for page in PAGES for figure in page.figures]
    for page, path in figures:
        name = f"{shown(path)} (page {page})"
        if not path.is_file():
            problems.append(f"figure missing: {name}")
        elif path.stat().st_size == 0:
            problems.append(f"figure empty: {name}")
        elif path.read_bytes()[: len(PNG_SIGNATURE)] != PNG_SIGNATURE:
            problems.append(f"figure is not a PNG: {name}")
    pages = toc_pages() if html else []
    for page in pages:
        if not (HTML / f"{page}.html").is_file():
            problems.append(f"page missing: {shown(HTML / page)}.html")
    print(
        f"== checked {len(figures)} figure(s) of {len(PAGES)} page(s) in lth/pages.py"
        + (f" and {len(pages)} page(s) in {shown(HTML)}" if html else ""),
        flush=True,
    )
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", help="papermill parameter `profile` (default: notebook's own)")
    parser.add_argument(
        "-p",
        dest="params",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="extra papermill parameter, value read as YAML (repeatable)",
    )
    parser.add_argument("--runs", type=Path, help="run-store directory for the kernel (LTH_RUNS)")
    parser.add_argument("--only", metavar="PAGE", help="execute only the page PAGE (lth/pages.py)")
    parser.add_argument("--skip-build", action="store_true", help="do not run jupyter-book")
    parser.add_argument("--check-only", action="store_true", help="only check figures and pages")
    parser.add_argument(
        "--out",
        type=Path,
        help="build the book in this folder instead of the repository (the smoke build's "
        "_build/smoke): executed notebooks, figures and site go there only",
    )
    args = parser.parse_args()

    untouched = real_book() if args.out is not None else None
    if args.out is not None:
        use_site(args.out)
    problems = registry_problems()  # the registry before anything else
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        sys.exit(2)
    if not args.check_only:
        parameters: dict[str, object] = {}
        if args.profile is not None:
            parameters["profile"] = args.profile
        parameters.update({key: parse_value(value) for key, value in args.params})
        try:  # everything checked before the first notebook runs
            planned = planned_runs(parameters, args.profile, args.only)
            check_environment(runs=args.runs)
        except ParameterError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        if args.runs is not None:
            args.runs.mkdir(parents=True, exist_ok=True)
            os.environ["LTH_RUNS"] = str(args.runs.resolve())  # the kernel inherits it

        FIGURES.mkdir(parents=True, exist_ok=True)
        for source, given, page, title in planned:
            execute(source, given, page, title)
        if not args.skip_build:
            build_site()

    problems = check_outputs(html=not args.skip_build)
    if untouched is not None and real_book() != untouched:
        changed = sorted(set(real_book().items()) ^ set(untouched.items()))
        problems.append(f"the build in {shown(SITE)} changed the real book: {changed[0][0]} ...")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print("== book OK" + ("" if args.skip_build else f": open {shown(HTML)}/index.html"))


if __name__ == "__main__":
    main()
