"""Named registries: one home for every "name -> thing" table of the library (mask criteria,
mask-1 and mask-0 actions, networks, weight treatments, datasets, profiles, precisions, campaign
targets, book pages), with one way to add an entry and one error for an unknown name.

A :class:`Registry` is a ``dict`` in the order its entries were added (the paper's order where
it has one), so ``list(CRITERIA)`` and ``name in CRITERIA`` work as before. Adding a criterion
is one function plus ``CRITERIA.register``: the command line, the notebooks' accepted values and
the figures read the registry, and need no other edit.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def unknown(
    what: str, given: object, accepted: Iterable[str], *, where: str = "", suggest: bool = False
) -> str:
    """The message for a name not in a registry: ``unknown network 'conv9'; accepted: fc, ...``
    (``where``: e.g. `` in '[fc, conv9]'``; with ``suggest``, a close accepted name is offered:
    ``did you mean 'profile'?``)."""
    accepted = list(accepted)
    hint = ""
    if suggest and isinstance(given, str):
        close = difflib.get_close_matches(given, accepted, n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {given!r}{where}{hint}; accepted: {', '.join(accepted)}"


class Registry(dict[str, T]):
    """Entries of one ``kind`` (e.g. ``"mask criterion"``) by name, in the order added."""

    def __init__(self, kind: str, entries: Iterable[tuple[str, T]] = ()):
        super().__init__(entries)
        self.kind = kind

    def lookup(self, name: str) -> T:
        """The entry called ``name``; an unknown name raises ValueError listing the accepted."""
        try:
            return self[name]
        except (KeyError, TypeError):
            raise ValueError(unknown(self.kind, name, self)) from None

    def add(self, name: str, entry: T) -> T:
        """Add ``entry`` as ``name``; a name already taken is an error (entries never change
        silently: a record's spec names them)."""
        if name in self:
            raise ValueError(f"a {self.kind} called {name!r} is already registered")
        self[name] = entry
        return entry

    def register(self, entry: Callable) -> Callable:
        """Decorator: add a function under its own ``__name__``."""
        return self.add(entry.__name__, entry)

    @classmethod
    def of_functions(cls, kind: str, functions: Iterable[Callable]) -> Registry:
        """A registry of ``functions``, each under its ``__name__``."""
        return cls(kind, ((f.__name__, f) for f in functions))
