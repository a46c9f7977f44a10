"""Draws a stratified subset of a tabular benchmark to validate on a larger model: a second fidelity for the table.

The subset is the table's `top` best successfully trained functions by its proxy score (`val_acc`, the mean validation
accuracy over seeds that replays rank by) and `random` further ones drawn uniformly from the rest. The best alone
would say only whether the proxy orders its winners well; the random stratum says whether it orders the space.

>>> from controller.tabular import example_table
>>> subset = draw_subset(example_table(), top=3, random=2, seed=0)
>>> list(subset["stratum"])
['top', 'top', 'top', 'random', 'random']
>>> list(subset["proxy_rank"][:3])
[1, 2, 3]
"""

from __future__ import annotations

import random as random_module
import zlib
from pathlib import Path

import pandas as pd

__all__ = ["STRATA", "TableSourceError", "draw_subset", "table_subset"]

STRATA = ("top", "random")
SUBSET_COLUMNS = ["function", "stratum", "proxy_score", "proxy_rank", "fingerprint"]


class TableSourceError(ValueError):
    """The table named by `--from-table` cannot be read or cannot give the subset asked for; the message says why."""


def _function_text(table: pd.DataFrame) -> pd.Series:
    """Return the text to validate per row: the run's canonical form (what the table trained), else the expression."""
    if "canonical" not in table.columns:
        return table["expression"].astype(str)
    canonical = table["canonical"].fillna("").astype(str)
    return canonical.where(canonical != "", table["expression"].astype(str))


def draw_subset(table: pd.DataFrame, top: int, random: int, seed: int = 0) -> pd.DataFrame:
    """Return the stratified subset of `table`: one row per function, the `top` best first, then the drawn ones.

    Columns: `function` (the text to validate), `stratum` ("top" or "random"), `proxy_score` (the table's
    `val_acc`), `proxy_rank` (1 = the table's best ok function; ties share the better rank) and `fingerprint`. Ties at
    the top's boundary go to the row met first in the table. The random draw orders the rest by fingerprint before
    sampling with `random.Random(seed)`, so it depends on the table's contents and the seed, not on its row order.
    """
    for option, value in (("--top", top), ("--random", random)):
        if int(value) < 0:
            raise TableSourceError(f"{option} must be 0 or more, got {value}")
    ok = table[(table["status"] == "ok") & table["val_acc"].notna()]
    if top + random > len(ok):
        raise TableSourceError(
            f"--top {top} and --random {random} ask for {top + random} functions, but the table holds only "
            f"{len(ok)} successfully trained ones; ask for fewer"
        )
    ok = ok.assign(function=_function_text(ok), proxy_score=ok["val_acc"].astype(float),
                   proxy_rank=ok["val_acc"].rank(ascending=False, method="min").astype(int))
    ranked = ok.sort_values("proxy_score", ascending=False, kind="mergesort")  # stable: ties keep table order
    best = ranked.head(top).assign(stratum="top")
    rest = ranked.iloc[top:].sort_values("fingerprint", kind="mergesort")
    drawn_at = sorted(random_module.Random(seed).sample(range(len(rest)), random))
    drawn = rest.iloc[drawn_at].sort_values("proxy_score", ascending=False, kind="mergesort").assign(stratum="random")
    subset = pd.concat([best, drawn])[SUBSET_COLUMNS].reset_index(drop=True)
    doubled = subset["function"][subset["function"].duplicated()].tolist()
    if doubled:  # one text for two fingerprints would merge two functions' trials in the validation store
        raise TableSourceError(f"the table spells two functions as {doubled[0]!r}; it is not a table of one space")
    return subset


def table_subset(path: str | Path, top: int, random: int, seed: int = 0) -> tuple[pd.DataFrame, dict[str, object]]:
    """Return the stratified subset of the table at `path` (see `draw_subset`) and the table's header (`attrs`)."""
    from controller.tabular import load_table

    try:
        table = load_table(path)
    except (ValueError, OSError, EOFError, zlib.error) as error:  # a truncated .gz ends in EOFError
        if isinstance(error, ValueError):  # load_table's own message says what is wrong and how to fix it
            raise TableSourceError(f"--from-table: {error}") from None
        raise TableSourceError(f"--from-table: cannot read {str(path)!r} ({type(error).__name__}: {error})") from None
    return draw_subset(table, top, random, seed), dict(table.attrs)
