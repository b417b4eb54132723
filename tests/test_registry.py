"""One registry helper for every "name -> thing" table (issue "one concept, one home"): adding a
mask criterion is one function plus one registry entry, and it appears in the command line, the
notebooks' accepted values, the sweeps and the figures, with no test to edit."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import TINY  # noqa: E402

from lth import criteria  # noqa: E402
from lth.__main__ import main  # noqa: E402
from lth.actions import MASK0_ACTIONS, MASK1_ACTIONS  # noqa: E402
from lth.data import DATASETS  # noqa: E402
from lth.experiments import resolve_settings, run_sweep  # noqa: E402
from lth.nets import ARCHITECTURES  # noqa: E402
from lth.parameters import check_value  # noqa: E402
from lth.plots import accuracy_vs_remaining  # noqa: E402
from lth.registry import Registry  # noqa: E402
from lth.specs import PROFILES  # noqa: E402
from lth.store import RunStore, StateCache  # noqa: E402
from lth.supermask import TREATMENTS  # noqa: E402
from lth.train import PRECISIONS  # noqa: E402

EVERY_REGISTRY = {
    "mask criterion": criteria.CRITERIA,
    "mask-1 action": MASK1_ACTIONS,
    "mask-0 action": MASK0_ACTIONS,
    "network": ARCHITECTURES,
    "weight treatment": TREATMENTS,
    "dataset": DATASETS,
    "profile": PROFILES,
    "precision": PRECISIONS,
}


@pytest.mark.parametrize("kind", EVERY_REGISTRY)
def test_every_registry_names_an_unknown_entry_the_same_way(kind):
    registry = EVERY_REGISTRY[kind]
    assert isinstance(registry, Registry) and registry.kind == kind
    with pytest.raises(ValueError) as info:
        registry.lookup("no-such-thing")
    assert str(info.value) == f"unknown {kind} 'no-such-thing'; accepted: {', '.join(registry)}"


def test_a_name_is_registered_once():
    registry = Registry("thing", [("a", 1)])
    with pytest.raises(ValueError, match="a thing called 'a' is already registered"):
        registry.add("a", 2)


def largest_change(w_i: torch.Tensor, w_f: torch.Tensor) -> torch.Tensor:
    """A toy criterion: keep the weights that moved most, either way."""
    return (w_f - w_i).abs()


@pytest.fixture
def toy_criterion(monkeypatch):
    """``largest_change`` registered as one more criterion, for this test only."""
    monkeypatch.setitem(criteria.CRITERIA, "largest_change", largest_change)
    return "largest_change"


def test_a_new_criterion_is_one_function_and_one_entry(toy_criterion, tmp_path, capsys):
    # the command line lists it
    main(["list"])
    assert toy_criterion in capsys.readouterr().out
    # the notebooks accept it
    assert check_value("criteria", [toy_criterion, "random"], "criteria") == [
        toy_criterion,
        "random",
    ]
    # a smoke sweep runs it, beside a criterion of the paper
    settings = resolve_settings("smoke", "fc", [toy_criterion, "random"], [0], 1, 30)
    frame = run_sweep(
        settings.chains(),
        settings.rounds,
        store=RunStore(tmp_path / "runs"),
        cache=StateCache(tmp_path / "cache"),
        progress=False,
        log=lambda message: None,
        data=TINY,
    )
    assert set(frame["criterion"]) == {toy_criterion, "random"}
    # and the figures draw it
    figure = accuracy_vs_remaining(frame)
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert toy_criterion in labels
