"""The one error every registry gives for a name it does not hold: the name, the closest valid one, all of them.

Operators, op sets, functions, known activations, tasks, models and strategies are all plain tables keyed by
snake_case names; they share this message so that a typo reads the same wherever it is made.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["unknown_name"]


def unknown_name(kind: str, name: object, valid: Iterable[str], advice: str = "") -> ValueError:
    """Return (for the caller to raise) the ValueError for `name` missing from a registry of `kind`.

    >>> str(unknown_name("task", "mnist2d", ["mnist1d", "digits"]))
    "unknown task 'mnist2d'. Did you mean 'mnist1d'? Choose one of: mnist1d, digits."
    """
    valid = list(valid)
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"unknown {kind} {name!r}.{hint} Choose one of: {', '.join(valid)}.{advice}")
