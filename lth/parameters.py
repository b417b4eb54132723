"""Every parameter checked before any work: the notebooks, ``python -m lth sweep`` and
``scripts/build_book.py`` take the same parameters, checked here by the same rules.

A parameter has a *kind* (:data:`KINDS`): ``"seeds"``, ``"rounds"``, ``"net"``, ``"criteria"``...;
``"<kind> or None"`` also accepts None (the profile's value). A bad value raises one
:class:`ParameterError` whose one-line message names the parameter, what was given and what is
accepted. The rules:

- whole numbers (``seeds``, ``rounds``, ``iterations``, ``epochs``) are ints; a float is accepted
  only when it is integral (``1e2`` is 100; ``1.5`` is an error), and text that reads as such a
  number is too (``"100"``); booleans are never numbers;
- a list may be given as a sequence or as text (``"[0, 1, 2]"``, ``"0,1,2"``, ``"0 1 2"``), and a
  single value is a list of one (``seeds`` given as ``0`` is ``[0]``); a list is checked whole,
  must not be empty and names each item once;
- names (networks, criteria, actions, treatments, precisions, profiles) must be in their registry;
- ``LTH_RUNS`` and ``LTH_CACHE`` (``--runs``, ``--cache``) must be folders that exist or can be
  created, and can be written; ``LTH_DATA`` (``--data``) an existing folder, or one that can be
  created (missing files are downloaded into it); ``LTH_PARTIAL_TEST`` must be understood.

A notebook checks its parameters in the first code cell after its ``parameters`` cell (the cell
papermill injects its parameters after), with :func:`check_notebook`: a name papermill injected
that the notebook does not declare is an error, so a misspelt ``-p profil smoke`` fails at once
instead of running the default profile. Run notebooks in a fresh kernel (papermill does).
"""

from __future__ import annotations

import numbers
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .actions import MASK0_ACTIONS, MASK1_ACTIONS
from .criteria import CRITERIA
from .data import DATA_ENV, DEFAULT_ROOT, _partial_test_allowed
from .nets import ARCHITECTURES
from .registry import unknown
from .specs import PROFILES
from .store import CACHE_ENV, RUNS_ENV, default_cache_dir, default_runs_dir
from .supermask import TREATMENTS
from .train import PRECISIONS, PROTOCOLS


class ParameterError(ValueError):
    """A bad parameter or setting. Its message is one line: which parameter, what was given,
    what is accepted. In a notebook IPython shows that line alone, without a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for an exception's display
        return [f"{type(self).__name__}: {self}"]


# ----------------------------------------------------------------------------- value kinds


def _whole(value: object) -> int | None:
    """``value`` as an int if it is one, an integral float or text for either; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else None  # is_integer: False for inf, nan
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return _whole(float(text))
        except ValueError:
            return None
    return None


def _items(value: object) -> list:
    """A list parameter's items: text is split (``"[a, b]"``, ``"a,b"``, ``"a b"``, quotes
    dropped), so is every text item of a sequence (``["0", "1"]`` from a command line); any
    other single value is a list of one."""
    if isinstance(value, str):
        text = value.strip().strip("[]()").replace(",", " ")
        return [item.strip("'\"") for item in text.split()]
    if isinstance(value, (list, tuple)):
        return [
            part for item in value for part in (_items(item) if isinstance(item, str) else [item])
        ]
    return [value]


def _once(name: str, items: list, value: object) -> None:
    seen = set()
    for item in items:
        if item in seen:
            raise ParameterError(f"{name}: {item!r} is given twice in {value!r}; give each once")
        seen.add(item)


def _or_none(none_ok: bool) -> str:
    return ", or None (the default)" if none_ok else ""


@dataclass(frozen=True)
class Whole:
    """A whole number >= ``minimum``, or with ``many`` a list of them."""

    minimum: int
    what: str  # e.g. "pruning rounds after the dense network"
    many: bool = False

    def describe(self, none_ok: bool = False) -> str:
        if self.many:
            text = f"a list of {self.what} (whole numbers >= {self.minimum}) such as [0, 1, 2]"
        else:
            text = f"a whole number >= {self.minimum} ({self.what})"
        return text + _or_none(none_ok)

    def __call__(self, name: str, value: object, none_ok: bool = False) -> int | list[int]:
        expected = f"expected {self.describe(none_ok)}"
        if not self.many:
            number = _whole(value)
            if number is None or number < self.minimum:
                raise ParameterError(f"{name}: {expected}, got {value!r}")
            return number
        items = _items(value)
        if not items:
            raise ParameterError(f"{name}: {expected}, got {value!r}, an empty list")
        numbers_ = []
        for item in items:
            number = _whole(item)
            if number is None or number < self.minimum:
                why = "" if len(items) == 1 else f" ({item!r} is not one)"
                raise ParameterError(f"{name}: {expected}, got {value!r}{why}")
            numbers_.append(number)
        _once(name, numbers_, value)
        return numbers_


@dataclass(frozen=True)
class Names:
    """A name from ``registry`` (a callable: the registry is read when checking), or with
    ``many`` a list of them, e.g. networks ``[fc, conv2]``."""

    registry: Callable[[], Iterable[str]]
    what: str  # e.g. "network"
    many: bool = False

    def describe(self, none_ok: bool = False) -> str:
        accepted = ", ".join(self.registry())
        if self.many:
            return f"a list of {self.what}s such as [{accepted.split(', ')[0]}] ({accepted})" + (
                _or_none(none_ok)
            )
        return f"a {self.what} ({accepted})" + _or_none(none_ok)

    def __call__(self, name: str, value: object, none_ok: bool = False) -> str | list[str]:
        accepted = list(self.registry())
        if not self.many:
            if not isinstance(value, str):
                raise ParameterError(f"{name}: expected {self.describe(none_ok)}, got {value!r}")
            text = value.strip().strip("'\"")
            if text not in accepted:
                raise ParameterError(f"{name}: {unknown(self.what, text, accepted)}")
            return text
        items = _items(value)
        if not items:
            raise ParameterError(
                f"{name}: expected {self.describe(none_ok)}, got {value!r}, an empty list"
            )
        for item in items:
            if not isinstance(item, str) or item not in accepted:
                where = "" if len(items) == 1 else f" in {value!r}"
                message = unknown(self.what, item, accepted, where=where)
                raise ParameterError(f"{name}: {message}")
        _once(name, items, value)
        return items


@dataclass(frozen=True)
class FileStem:
    """A file name without folder or suffix (``book/figures/<name>.png``)."""

    def describe(self, none_ok: bool = False) -> str:
        return "a file name of letters, digits, '_' and '-'" + _or_none(none_ok)

    def __call__(self, name: str, value: object, none_ok: bool = False) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ParameterError(f"{name}: expected {self.describe(none_ok)}, got {value!r}")
        return value


@dataclass(frozen=True)
class Address:
    """A Dask scheduler's address, ``tcp://HOST:PORT`` (or ``HOST:PORT``, or another of Dask's
    protocols such as ``tls://``): checked for its form here, reached when the run starts."""

    def describe(self, none_ok: bool = False) -> str:
        return "a Dask scheduler address such as tcp://10.0.0.1:8786" + _or_none(none_ok)

    def __call__(self, name: str, value: object, none_ok: bool = False) -> str:
        form = r"([a-z]+://)?[A-Za-z0-9_.\[\]:-]+:[0-9]{1,5}"
        if not isinstance(value, str) or not re.fullmatch(form, value.strip()):
            raise ParameterError(f"{name}: expected {self.describe(none_ok)}, got {value!r}")
        return value.strip()


#: Where training runs: "auto" is a CUDA device where the machine (or Dask worker) has one.
DEVICES = ("cpu", "cuda", "auto")


def _networks() -> list[str]:
    return [net for net in ARCHITECTURES if net in PROTOCOLS]


#: Every kind of parameter, by name; a notebook declares each of its parameters' kind.
KINDS: dict[str, Whole | Names | FileStem | Address] = {
    "profile": Names(lambda: PROFILES, "profile"),
    "net": Names(_networks, "network"),
    "nets": Names(_networks, "network", many=True),
    "conv_net": Names(lambda: [n for n in _networks() if n.startswith("conv")], "conv network"),
    "criterion": Names(lambda: CRITERIA, "mask criterion"),
    "criteria": Names(lambda: CRITERIA, "mask criterion", many=True),
    "mask1": Names(lambda: MASK1_ACTIONS, "mask-1 action", many=True),
    "mask0": Names(lambda: MASK0_ACTIONS, "mask-0 action", many=True),
    "treatments": Names(lambda: TREATMENTS, "weight treatment", many=True),
    "precision": Names(lambda: PRECISIONS, "precision"),
    "precisions": Names(lambda: PRECISIONS, "precision", many=True),
    "seeds": Whole(0, "seeds", many=True),
    "rounds": Whole(0, "pruning rounds after the dense network"),
    "iterations": Whole(1, "training iterations per run"),
    "epochs": Whole(1, "training epochs"),
    "name": FileStem(),
    "scheduler": Address(),
    "local_workers": Whole(0, "local Dask worker processes; 0 trains in this process"),
    "device": Names(lambda: DEVICES, "device"),
}
_OR_NONE = " or None"


def check_kind(kind: str) -> str:
    """``kind`` itself if it names a kind (``"seeds"``, ``"seeds or None"``); else an error
    (a mistake in the code that declares the parameter, not in the user's value)."""
    base = kind.removesuffix(_OR_NONE)
    if base not in KINDS:
        raise ValueError(unknown("parameter kind", base, KINDS))
    return kind


def check_value(name: str, value: object, kind: str) -> object:
    """``value`` checked as a ``kind`` parameter called ``name``, normalised (lists as lists,
    whole numbers as ints); a :class:`ParameterError` naming ``name`` if it is not one."""
    base = check_kind(kind).removesuffix(_OR_NONE)
    none_ok = kind.endswith(_OR_NONE)
    if value is None or (isinstance(value, str) and value.strip() in ("None", "null")):
        if none_ok:
            return None
        raise ParameterError(f"{name}: expected {KINDS[base].describe()}, got {value!r}")
    return KINDS[base](name, value, none_ok)


def check_parameters(kinds: Mapping[str, str], values: Mapping[str, object]) -> dict:
    """``values`` checked against the declared ``kinds`` (name -> kind): an undeclared name is
    an error, every value is checked; returns the normalised values."""
    undeclared = [name for name in values if name not in kinds]
    if undeclared:
        raise ParameterError(unknown("parameter", undeclared[0], kinds, suggest=True))
    return {name: check_value(name, value, kinds[name]) for name, value in values.items()}


# ----------------------------------------------------------------------------- notebooks

#: Names every IPython kernel defines; names starting with "_" are the kernel's too.
_KERNEL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})
#: The types of values papermill can inject (JSON and YAML values).
_INJECTABLE = (type(None), bool, int, float, str, list, dict)


def injected_names(namespace: Mapping[str, object]) -> list[str]:
    """The names in a notebook's namespace that could be parameters: not the kernel's own,
    not modules, functions or classes."""
    return [
        name
        for name, value in namespace.items()
        if not name.startswith("_") and name not in _KERNEL_NAMES and isinstance(value, _INJECTABLE)
    ]


def check_notebook(namespace: Mapping[str, object], **kinds: str) -> dict:
    """Check a notebook's parameters before any work; call it in the first code cell after the
    ``parameters`` cell as ``globals().update(check_notebook(globals(), seeds="seeds", ...))``
    with every parameter the notebook declares and its kind.

    A name papermill injected that is not declared is an error (papermill itself only warns),
    so is every bad value; then the run store, the state cache and the dataset root are checked
    (:func:`check_environment`). Returns the normalised parameters."""
    for kind in kinds.values():
        check_kind(kind)
    missing = [name for name in kinds if name not in namespace]
    if missing:
        raise ValueError(f"declared parameters not in the parameters cell: {', '.join(missing)}")
    values = {name: namespace[name] for name in injected_names(namespace)}
    checked = check_parameters(kinds, values)
    check_environment()
    return checked


# ----------------------------------------------------------------------------- environment


def _label(flag: str, env: str, given: object, default: object) -> tuple[Path, str, str]:
    """The folder to check, how to name it (``--runs DIR``, ``LTH_RUNS=DIR`` or the default)
    and how to change it (``give --runs``, ``set LTH_RUNS to``)."""
    if given is not None:
        return Path(given), f"{flag} {given}", f"give {flag}"
    if os.environ.get(env):
        return Path(os.environ[env]), f"{env}={os.environ[env]}", f"set {env} to"
    return Path(default), f"{env} (unset: default {default})", f"set {env} to"


def _nearest_existing(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return Path(path.anchor or ".")


def _writable_folder(flag: str, env: str, given: object, default: object) -> Path:
    path, label, change = _label(flag, env, given, default)
    todo = f"{change} a folder that exists or can be created, and can be written"
    if path.exists() and not path.is_dir():
        raise ParameterError(f"{label}: not a folder (a file is in the way); {todo}")
    existing = _nearest_existing(path.absolute())
    if not existing.is_dir():
        raise ParameterError(f"{label}: cannot be created ({existing} is a file); {todo}")
    try:  # a real write: permissions alone say nothing for root or a read-only file system
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        what = "cannot be written" if existing == path.absolute() else "cannot be created"
        raise ParameterError(f"{label}: {what} ({error.strerror or error}); {todo}") from None
    return path


def check_environment(
    runs: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
) -> dict[str, Path]:
    """The run store, state cache and dataset root (``runs`` etc. if given, as the command
    line's ``--runs``, else ``$LTH_RUNS``, ``$LTH_CACHE``, ``$LTH_DATA``, else the defaults)
    checked before any work, and ``$LTH_PARTIAL_TEST``; returns the three folders."""
    runs_dir = _writable_folder("--runs", RUNS_ENV, runs, default_runs_dir())
    cache_dir = _writable_folder("--cache", CACHE_ENV, cache, default_cache_dir())
    data_dir, label, change = _label("--data", DATA_ENV, data, DEFAULT_ROOT)
    todo = f"{change} the dataset folder (README, Data)"
    if data_dir.exists() and not data_dir.is_dir():
        raise ParameterError(f"{label}: not a folder (a file is in the way); {todo}")
    if not data_dir.exists():  # missing files are downloaded into it: it must be creatable
        existing = _nearest_existing(data_dir.absolute())
        if not existing.is_dir():
            raise ParameterError(
                f"{label}: does not exist and cannot be created for downloads ({existing} is a "
                f"file); {todo}"
            )
    try:
        _partial_test_allowed(None)
    except ValueError as error:
        raise ParameterError(str(error)) from None
    return {"runs": runs_dir, "cache": cache_dir, "data": data_dir}
