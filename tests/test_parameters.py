"""Every parameter checked before any work (lth/parameters.py), in the notebooks, the command
line and scripts/build_book.py; each bad input gets one line that names it. No training here."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from lth import __main__ as cli
from lth import experiments
from lth.experiments import learned_supermask_runs, resolve_settings
from lth.pages import PAGES
from lth.parameters import (
    KINDS,
    ParameterError,
    check_environment,
    check_kind,
    check_notebook,
    check_parameters,
    check_value,
    injected_names,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NETS = "fc, conv2, conv4, conv6"
PROFILES = "smoke, mid, mid-short, paper, conv-short, supermask, conv-fig3"
ROUNDS = "a whole number >= 0 (pruning rounds after the dense network)"
ITERATIONS = "a whole number >= 1 (training iterations per run)"
SEEDS = "a list of seeds (whole numbers >= 0) such as [0, 1, 2]"
OR_NONE = ", or None (the default)"
MASK0 = "zero, freeze_init, variant_1, variant_2, random_zero_control"


def _load_build_book():
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_book = _load_build_book()


@pytest.fixture(autouse=True)
def usable_folders(tmp_path, monkeypatch):
    """Every test starts with usable LTH_RUNS, LTH_CACHE and LTH_DATA in a temporary folder."""
    monkeypatch.setenv("LTH_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("LTH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LTH_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("LTH_PARTIAL_TEST", raising=False)
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path


def _message(call, *args, **kwargs) -> str:
    with pytest.raises(ParameterError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------- values

BAD_VALUES = [
    ("rounds", 1.5, "rounds or None", f"rounds: expected {ROUNDS}{OR_NONE}, got 1.5"),
    ("rounds", True, "rounds or None", f"rounds: expected {ROUNDS}{OR_NONE}, got True"),
    ("rounds", -1, "rounds", f"rounds: expected {ROUNDS}, got -1"),
    ("rounds", "two", "rounds", f"rounds: expected {ROUNDS}, got 'two'"),
    ("iterations", 0, "iterations or None", f"iterations: expected {ITERATIONS}{OR_NONE}, got 0"),
    ("iterations", 1.5e2 + 0.5, "iterations", f"iterations: expected {ITERATIONS}, got 150.5"),
    ("iterations", float("inf"), "iterations", f"iterations: expected {ITERATIONS}, got inf"),
    ("iterations", float("nan"), "iterations", f"iterations: expected {ITERATIONS}, got nan"),
    (
        "learned_epochs",
        0,
        "epochs or None",
        f"learned_epochs: expected a whole number >= 1 (training epochs){OR_NONE}, got 0",
    ),
    ("seeds", "a", "seeds or None", f"seeds: expected {SEEDS}{OR_NONE}, got 'a'"),
    ("seeds", -1, "seeds", f"seeds: expected {SEEDS}, got -1"),
    ("seeds", True, "seeds", f"seeds: expected {SEEDS}, got True"),
    ("seeds", "[0, x]", "seeds", f"seeds: expected {SEEDS}, got '[0, x]' ('x' is not one)"),
    ("seeds", [0, 1.5], "seeds", f"seeds: expected {SEEDS}, got [0, 1.5] (1.5 is not one)"),
    ("seeds", "[]", "seeds or None", f"seeds: expected {SEEDS}{OR_NONE}, got '[]', an empty list"),
    ("seeds", "[0, 0]", "seeds", "seeds: 0 is given twice in '[0, 0]'; give each once"),
    ("seeds", None, "seeds", f"seeds: expected {SEEDS}, got None"),
    ("net", "nett", "net", f"net: unknown network 'nett'; accepted: {NETS}"),
    ("net", "conv9", "net", f"net: unknown network 'conv9'; accepted: {NETS}"),
    ("net", 2, "net", f"net: expected a network ({NETS}), got 2"),
    (
        "nets",
        "[fc, conv9]",
        "nets",
        f"nets: unknown network 'conv9' in '[fc, conv9]'; accepted: {NETS}",
    ),
    ("nets", ["conv9"], "nets", f"nets: unknown network 'conv9'; accepted: {NETS}"),
    ("profile", "huge", "profile", f"profile: unknown profile 'huge'; accepted: {PROFILES}"),
    ("precision", "fp16", "precision", "precision: unknown precision 'fp16'; accepted: fp32, bf16"),
    ("precision", True, "precision", "precision: expected a precision (fp32, bf16), got True"),
    (
        "precisions",
        "[fp32, fp64]",
        "precisions",
        "precisions: unknown precision 'fp64' in '[fp32, fp64]'; accepted: fp32, bf16",
    ),
    (
        "treatments",
        ["init", "zero"],
        "treatments",
        "treatments: unknown weight treatment 'zero' in ['init', 'zero']; accepted: init, "
        "signed_constant",
    ),
    (
        "variants",
        "[reinit]",
        "mask0 or None",
        f"variants: unknown mask-0 action 'reinit'; accepted: {MASK0}",
    ),
    (
        "criteria",
        "[large_final, large_final]",
        "criteria",
        "criteria: 'large_final' is given twice in '[large_final, large_final]'; give each once",
    ),
    (
        "figure_name",
        "../x",
        "name",
        "figure_name: expected a file name of letters, digits, '_' and '-', got '../x'",
    ),
]


@pytest.mark.parametrize("name, value, kind, message", BAD_VALUES)
def test_bad_values_get_one_line_naming_the_parameter(name, value, kind, message):
    assert _message(check_value, name, value, kind) == message


@pytest.mark.parametrize(
    "value, kind, expected",
    [
        (0, "seeds or None", [0]),  # one seed is a list of one
        ("0", "seeds", [0]),
        ("[0, 1, 2]", "seeds", [0, 1, 2]),
        ("0,1", "seeds", [0, 1]),
        (["0", "1"], "seeds", [0, 1]),  # nargs="+" on a command line
        ((0, 1.0), "seeds", [0, 1]),
        (1e2, "iterations", 100),  # papermill reads -p iterations 1e2 as 100.0
        ("1e4", "iterations or None", 10_000),
        (None, "iterations or None", None),
        ("None", "rounds or None", None),
        (0, "rounds", 0),
        ("[fc, 'conv2']", "nets", ["fc", "conv2"]),
        ("large_final", "criteria or None", ["large_final"]),
        (" conv2 ", "net", "conv2"),
        ("criteria_conv2", "name", "criteria_conv2"),
    ],
)
def test_good_values_are_normalised(value, kind, expected):
    result = check_value("p", value, kind)
    assert result == expected and type(result) is type(expected)


def test_every_kind_accepts_none_only_when_declared_so():
    for kind in KINDS:
        assert check_value("p", None, f"{kind} or None") is None
        assert _message(check_value, "p", None, kind).startswith("p: expected ")


def test_a_mistyped_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown parameter kind 'seed'"):
        check_kind("seed or None")


def test_unknown_names_are_rejected_with_a_suggestion():
    kinds = {"profile": "profile", "net": "net"}
    message = _message(check_parameters, kinds, {"profil": "smoke"})
    assert message == "unknown parameter 'profil' (did you mean 'profile'?); accepted: profile, net"
    assert check_parameters(kinds, {"net": "fc"}) == {"net": "fc"}


def test_the_notebook_shows_the_message_alone():
    error = ParameterError("rounds: expected a whole number")
    assert error._render_traceback_() == ["ParameterError: rounds: expected a whole number"]


# ----------------------------------------------------------------------------- notebooks


def _cells(path: Path) -> tuple[dict, dict]:
    """A notebook's parameters cell and the code cell after it (its check)."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    index = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    return cells[index], cells[index + 1]


def _run_check(path: Path, **injected) -> dict:
    """Execute ``path``'s parameters cell, what papermill would inject, then its check cell."""
    parameters, check = _cells(path)
    namespace: dict = {}
    exec("".join(parameters["source"]), namespace)
    namespace.update(injected)
    exec("".join(check["source"]), namespace)
    return namespace


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_checks_its_parameters_first(path):
    parameters, check = _cells(path)
    assert not parameters["outputs"] and not check["outputs"]
    assert "check_notebook(" in "".join(check["source"]) and "globals()" in "".join(check["source"])
    kinds = build_book.notebook_kinds(path)  # also: the check names exactly the declared ones
    assert kinds and all(check_kind(kind) for kind in kinds.values())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_accepts_its_defaults(path):
    if "profile" not in build_book.notebook_kinds(path):  # a page of a chosen profile only
        assert _run_check(path)["net"] == "conv4"
        return
    namespace = _run_check(path, profile="smoke")
    assert namespace["profile"] == "smoke"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_rejects_unknown_parameter_names(path):
    declared = ", ".join(build_book.notebook_kinds(path))
    message = _message(_run_check, path, profil="smoke")
    hint = " (did you mean 'profile'?)" if "profile" in declared.split(", ") else ""
    assert message == f"unknown parameter 'profil'{hint}; accepted: {declared}"
    message = _message(_run_check, path, nett="conv2")
    assert message.startswith("unknown parameter 'nett'")


@pytest.mark.parametrize(
    "stem, injected, message",
    [
        ("criteria", {"seeds": 0, "rounds": 1.5}, f"rounds: expected {ROUNDS}{OR_NONE}, got 1.5"),
        ("criteria", {"figure_name": "a b"}, "figure_name: expected a file name"),
        ("supermask", {"learned_epochs": 0}, "learned_epochs: expected a whole number >= 1"),
        ("table1", {"learned_seeds": []}, "learned_seeds: expected a list of seeds"),
        ("precision", {"nets": "[fc, conv9]"}, "nets: unknown network 'conv9' in '[fc, conv9]'"),
        ("signs", {"variants": "[rewind, zero]"}, "variants: unknown mask-1 action 'zero' in"),
        ("zeros", {"variants": "[zero, rewind]"}, "variants: unknown mask-0 action 'rewind' in"),
        ("sign_criteria", {"criteria": "[large_final, biggest]"}, "criteria: unknown mask"),
        ("signs", {"criterion": "[large_final]"}, "criterion: unknown mask criterion"),
    ],
)
def test_notebook_values_are_checked(stem, injected, message):
    path = ROOT / "notebooks" / f"{stem}.ipynb"
    assert _message(_run_check, path, **injected).startswith(message)


def test_notebooks_go_on_with_the_normalised_values():
    path = ROOT / "notebooks" / "criteria.ipynb"
    namespace = _run_check(path, iterations=1e2, seeds=0, criteria="large_final, random")
    assert namespace["iterations"] == 100 and namespace["seeds"] == [0]
    assert namespace["criteria"] == ["large_final", "random"]


def test_the_namespace_check_ignores_the_kernels_names():
    namespace = {
        "In": [""],
        "Out": {},
        "_": None,
        "_i1": "x",
        "get_ipython": print,
        "exit": object(),
        "Path": Path,
        "json": json,
        "profile": "smoke",
        "typo": 3,
    }
    assert injected_names(namespace) == ["profile", "typo"]
    assert _message(check_notebook, namespace, profile="profile").startswith(
        "unknown parameter 'typo'"
    )
    del namespace["typo"]
    assert check_notebook(namespace, profile="profile") == {"profile": "smoke"}


# ----------------------------------------------------------------------------- folders


def test_usable_folders_pass(usable_folders):
    folders = check_environment()
    assert folders["runs"] == usable_folders / "runs"
    assert not folders["runs"].exists()  # checked, not created


@pytest.mark.parametrize("env", ["LTH_RUNS", "LTH_CACHE"])
def test_a_file_is_not_a_run_store_or_cache(env, usable_folders, monkeypatch):
    monkeypatch.setenv(env, str(usable_folders / "afile"))
    assert _message(check_environment) == (
        f"{env}={usable_folders / 'afile'}: not a folder (a file is in the way); set {env} to a "
        "folder that exists or can be created, and can be written"
    )


@pytest.mark.parametrize("env", ["LTH_RUNS", "LTH_CACHE"])
def test_a_folder_that_cannot_be_created(env, usable_folders, monkeypatch):
    # under a regular file nothing can be created, even by root (chmod would not stop root)
    monkeypatch.setenv(env, str(usable_folders / "afile" / "sub"))
    assert _message(check_environment) == (
        f"{env}={usable_folders / 'afile' / 'sub'}: cannot be created ({usable_folders / 'afile'} "
        f"is a file); set {env} to a folder that exists or can be created, and can be written"
    )


def test_an_unwritable_folder(usable_folders, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("lth.parameters.tempfile.TemporaryFile", refuse)
    (usable_folders / "runs").mkdir()
    assert _message(check_environment).startswith(
        f"LTH_RUNS={usable_folders / 'runs'}: cannot be written (Permission denied); set LTH_RUNS"
    )


def test_the_data_root(usable_folders, monkeypatch):
    check_environment()  # missing but creatable: the files can be downloaded into it
    monkeypatch.setenv("LTH_DATA", str(usable_folders / "afile"))
    assert _message(check_environment).startswith(
        f"LTH_DATA={usable_folders / 'afile'}: not a folder (a file is in the way); set LTH_DATA"
    )
    monkeypatch.setenv("LTH_DATA", str(usable_folders / "afile" / "x"))
    assert _message(check_environment).startswith(
        f"LTH_DATA={usable_folders / 'afile' / 'x'}: does not exist and cannot be created"
    )


def test_explicit_folders_are_named_as_options(usable_folders):
    message = _message(check_environment, cache=usable_folders / "afile")
    assert message.startswith(f"--cache {usable_folders / 'afile'}: not a folder")
    assert "give --cache a folder" in message


def test_unset_variables_name_the_default(monkeypatch):
    monkeypatch.delenv("LTH_RUNS")
    monkeypatch.chdir(Path(__file__).parent)  # where data/runs would not be a problem
    check_environment()
    monkeypatch.setenv("LTH_PARTIAL_TEST", "maybe")
    assert _message(check_environment).startswith("LTH_PARTIAL_TEST='maybe' is not understood")


# ----------------------------------------------------------------------------- command line


def _no_training(*args, **kwargs):
    raise AssertionError("a bad parameter must stop the sweep before any work")


CLI_CASES = [
    (["--profil", "smoke"], "error: unrecognized arguments: --profil smoke"),
    (["--nett", "conv2"], "error: unrecognized arguments: --nett conv2"),
    (["--seeds", "0", "0"], "error: --seeds: 0 is given twice in '0 0'; give each once"),
    (["--seeds", "a"], f"error: --seeds: expected {SEEDS}{OR_NONE}, got 'a'"),
    (["--rounds", "1.5"], f"error: --rounds: expected {ROUNDS}{OR_NONE}, got '1.5'"),
    (["--rounds", "True"], f"error: --rounds: expected {ROUNDS}{OR_NONE}, got 'True'"),
    (["--iterations", "0"], f"error: --iterations: expected {ITERATIONS}{OR_NONE}, got '0'"),
    (["--net", "conv9"], f"error: --net: unknown network 'conv9'; accepted: {NETS}"),
    (["--profile", "huge"], f"error: --profile: unknown profile 'huge'; accepted: {PROFILES}"),
    (["--mask0", "zero", "reinit"], "error: --mask0: unknown mask-0 action 'reinit' in"),
    (["--precision", "fp16"], "error: --precision: unknown precision 'fp16'"),
    (["--local-workers", "-1"], "error: --local-workers: expected a whole number >= 0"),
    (["--scheduler", "tcp//h"], "error: --scheduler: expected a Dask scheduler address such"),
    (["--device", "gpu"], "error: --device: unknown device 'gpu'; accepted: cpu, cuda, auto"),
    (["--scheduler", "h:8786", "--local-workers", "2"], "error: give a scheduler address or"),
]


@pytest.mark.parametrize("argv, line", CLI_CASES)
def test_the_command_line_prints_one_line_and_exits_2(argv, line, monkeypatch, capsys):
    monkeypatch.setattr(cli, "run_sweep", _no_training)
    try:
        status = cli.main(["sweep", "--profile", "smoke", *argv])
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith(line), err


@pytest.mark.parametrize("option", ["--runs", "--cache", "--data"])
def test_the_command_line_checks_its_folders(option, usable_folders, monkeypatch, capsys):
    monkeypatch.setattr(cli, "run_sweep", _no_training)
    bad = usable_folders / "afile" / "sub"
    assert cli.main(["sweep", "--profile", "smoke", option, str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {option} {bad}: ") and err.count("\n") == 1
    monkeypatch.setenv("LTH_RUNS", str(usable_folders / "afile"))
    assert cli.main(["sweep", "--profile", "smoke"]) == 2
    assert capsys.readouterr().err.startswith(f"error: LTH_RUNS={usable_folders / 'afile'}: ")


def test_the_command_line_passes_checked_values_on(usable_folders, monkeypatch):
    seen = {}

    def fake_sweep(chains, rounds, **kwargs):
        seen.update(chains=chains, rounds=rounds, **kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(cli, "run_sweep", fake_sweep)
    argv = ["sweep", "--profile", "smoke", "--seeds", "[0, 1]", "--iterations", "1e2"]
    assert cli.main([*argv, "--rounds", "1", "--criteria", "large_final"]) == 2
    assert {c.seed for c in seen["chains"]} == {0, 1} and seen["rounds"] == 1
    assert {c.iterations for c in seen["chains"]} == {100}
    assert seen["store"].root == usable_folders / "runs"


# ----------------------------------------------------------------------------- build_book.py


def test_build_book_sends_each_notebook_only_its_parameters():
    planned = build_book.planned_runs({"profile": "smoke", "criteria": "[large_final]"}, "smoke")
    pages = [page or source.stem for source, _, page, _ in planned]
    names = {page.name for page in PAGES}
    own = [p.stem for p in NOTEBOOKS if p.stem != "scorecard" and p.stem in names]
    assert pages == [*own, "criteria_conv2", "criteria_conv4", "criteria_conv6", "scorecard"]
    given = {page or source.stem: params for source, params, page, _ in planned}
    assert given["signs"] == {"profile": "smoke"}
    assert given["criteria"] == {"profile": "smoke", "criteria": ["large_final"]}
    assert given["criteria_conv2"]["net"] == "conv2" and given["criteria_conv2"]["rounds"] == 1
    only = build_book.planned_runs({"iterations": 1e2}, None, "zeros")
    assert [(s.stem, p) for s, p, _, _ in only] == [("zeros", {"iterations": 100})]


@pytest.mark.parametrize(
    "parameters, only, message",
    [
        ({"profil": "smoke"}, None, "-p: unknown parameter 'profil' (did you mean 'profile'?)"),
        ({"nett": "conv2"}, None, "-p: unknown parameter 'nett' (did you mean 'net'?)"),
        ({"variants": ["reinit"]}, "criteria", "-p: unknown parameter 'variants'; accepted: "),
        ({}, "critera", "--only: unknown notebook or page 'critera'; accepted: criteria, "),
        ({"seeds": "a"}, None, f"notebooks/criteria.ipynb: seeds: expected {SEEDS}"),
        ({"rounds": 1.5}, None, f"notebooks/criteria.ipynb: rounds: expected {ROUNDS}"),
        ({"iterations": 1.5}, "signs", "notebooks/signs.ipynb: iterations: expected"),
        ({"learned_epochs": 0}, None, "notebooks/supermask.ipynb: learned_epochs: expected"),
        ({"nets": ["fc", "conv9"]}, None, "notebooks/precision.ipynb: nets: unknown network"),
        ({"variants": ["reinit"]}, None, "notebooks/zeros.ipynb: variants: unknown mask-0"),
        ({"profile": "huge"}, "criteria_conv2", "criteria_conv2 (notebooks/criteria.ipynb): "),
    ],
)
def test_build_book_checks_everything_before_running(parameters, only, message):
    assert _message(build_book.planned_runs, parameters, None, only).startswith(message)


@pytest.mark.parametrize(
    "argv, line",
    [
        (["-p", "profil", "smoke"], "error: -p: unknown parameter 'profil'"),
        (["-p", "seeds", "0", "-p", "rounds", "1.5"], "error: notebooks/criteria.ipynb: rounds: "),
        (["--only", "precision", "-p", "nets", "[fc, conv9]"], "error: notebooks/precision.ipynb"),
        (["--runs", "{tmp}/afile"], "error: --runs {tmp}/afile: not a folder"),
    ],
)
def test_build_book_stops_with_one_line(argv, line, usable_folders, monkeypatch, capsys):
    monkeypatch.setattr(build_book, "execute", _no_training)
    argv = [a.format(tmp=usable_folders) for a in argv]
    monkeypatch.setattr(sys, "argv", ["build_book.py", "--profile", "smoke", *argv])
    with pytest.raises(SystemExit) as exit_:
        build_book.main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert err.startswith(line.format(tmp=usable_folders)), err


def test_build_book_checks_the_environment(usable_folders, monkeypatch, capsys):
    monkeypatch.setattr(build_book, "execute", _no_training)
    monkeypatch.setenv("LTH_CACHE", str(usable_folders / "afile" / "sub"))
    monkeypatch.setattr(sys, "argv", ["build_book.py", "--profile", "smoke"])
    with pytest.raises(SystemExit) as exit_:
        build_book.main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: LTH_CACHE={usable_folders}/afile/sub: ")


# ----------------------------------------------------------------------------- the library


def test_resolve_settings_takes_one_seed_and_refuses_non_integers():
    assert resolve_settings("smoke", seeds=0).seeds == (0,)
    for bad in ({"rounds": 1.5}, {"rounds": True}, {"iterations": 1e2}, {"seeds": [-1]}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            resolve_settings("smoke", **bad)


def test_zero_learned_epochs_is_an_error_not_the_official_schedule():
    settings = resolve_settings("smoke", seeds=[0], rounds=0)
    with pytest.raises(ValueError, match="epochs"):
        learned_supermask_runs(settings, 0)
    assert learned_supermask_runs(settings)[0].epochs == 1  # the smoke profile's
    paper = resolve_settings("paper", seeds=[0], rounds=0)
    assert learned_supermask_runs(paper, None)[0].epochs == 2000
    assert experiments.PROFILES["smoke"].supermask_epochs == 1
