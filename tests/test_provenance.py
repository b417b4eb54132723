"""Provenance (DESIGN.md, "Runs, results and caching"): the code's identity, dirty trees, and
what every record carries."""

from __future__ import annotations

import subprocess

import pytest
import torch

from lth import provenance


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git work tree with a committed package folder and a committed store, standing in for
    this repository (the provenance functions read the tree their package lives in)."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    (tmp_path / "data" / "runs").mkdir(parents=True)
    (tmp_path / "data" / "runs" / "a.json").write_text("{}\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "t"], cwd=tmp_path, check=True)
    monkeypatch.setattr(provenance, "_PACKAGE_DIR", tmp_path / "pkg")

    def fresh():
        provenance.code_identity.cache_clear()
        provenance.repository_root.cache_clear()

    fresh()
    yield tmp_path, fresh
    fresh()


def test_a_change_anywhere_but_the_store_makes_the_tree_dirty(repo):
    root, fresh = repo
    commit, dirty = provenance.code_identity()
    assert len(commit) == 40 and dirty is False
    (root / "data" / "runs" / "b.json").write_text("{}\n")  # new records are data, not code
    fresh()
    assert provenance.code_identity()[1] is False
    (root / "notebooks").mkdir()
    (root / "notebooks" / "new.ipynb").write_text("{}")  # outside the package folder too
    fresh()
    assert provenance.code_identity()[1] is True


def test_records_for_the_committed_store_are_refused_from_a_dirty_tree(repo, monkeypatch):
    root, fresh = repo
    monkeypatch.delenv(provenance.ALLOW_DIRTY_ENV, raising=False)
    store = root / "data" / "runs"
    provenance.check_clean_tree(store)  # clean: fine
    (root / "pkg" / "code.py").write_text("x = 2\n")
    fresh()
    with pytest.raises(ValueError, match="uncommitted changes.*LTH_ALLOW_DIRTY=1"):
        provenance.check_clean_tree(store)
    provenance.check_clean_tree(store, allow_dirty=True)
    provenance.check_clean_tree(root / "elsewhere")  # not the committed store
    monkeypatch.setenv(provenance.ALLOW_DIRTY_ENV, "1")
    provenance.check_clean_tree(store)
    assert provenance.provenance("cpu", ["k1", "k2"], 1.5)["git_dirty"] is True


def test_a_record_says_how_it_was_made():
    record = provenance.provenance("cpu", ["k1", "k2"], 12.345, {"dataset": "mnist"})
    for field in (
        "git_commit",
        "git_dirty",
        "python",
        "torch",
        "numpy",
        "threads",
        "cpu",
        "machine",
    ):
        assert field in record
    assert record["population"] == ["k1", "k2"] and record["population_size"] == 2
    assert record["population_wall_time_s"] == 12.35 and record["data"] == {"dataset": "mnist"}
    assert torch.backends.cpu.get_cpu_capability() in record["machine"].split()
