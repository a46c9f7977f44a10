"""A made-up table of the 1-unit paper space, to study how strategies learn before the real table is complete.

Every distinct function (3,955, up to scale and offset) gets a score from an additive model of its tokens (one
random effect per position and token value, averaged over the function's spellings) plus function-level noise;
the worst 15 % "fail" (status nan). The scores are NOT measurements: the landscape is one that per-token policies
(rl, tpe) and mutation (evolution) can learn, so it tells whether a strategy learns at all within a few hundred
evaluations, not how it does on real activation functions.

    python bench/synthetic_table.py --out /tmp/synthetic-paper-1unit.csv.gz
    python bench/search_efficiency.py --table /tmp/synthetic-paper-1unit.csv.gz --budget 600
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

import pandas as pd

from controller.tabular import _spellings, format_tokens, save_table
from search_space import Space


def synthetic_table(seed: int = 0, noise: float = 0.7, failing: float = 0.15) -> pd.DataFrame:
    """Return the made-up table (same columns as an exported one, where they matter for replay)."""
    space = Space(units=1, ops="paper")
    rng = random.Random(seed)
    effects = [[rng.gauss(0, 1) for _ in range(size)] for size in space.vocab_sizes()]
    rows = []
    for code, spelled in _spellings(space, True).items():
        base = sum(sum(effects[i][t] for i, t in enumerate(tokens)) for _, tokens in spelled) / len(spelled)
        rows.append((code, spelled, base + rng.gauss(0, noise)))
    cut = sorted(value for _, _, value in rows)[int(failing * len(rows))]
    out = []
    for code, spelled, value in rows:
        status = "ok" if value > cut else "nan"
        out.append({"expression": spelled[0][0], "fingerprint": code, "tokens": format_tokens(spelled[0][1]),
                    "status": status, "reason": "", "known": "", "val_acc_seeds": "",
                    "val_acc": 0.5 + 0.45 / (1 + math.exp(1.0 - value)) if status == "ok" else math.nan,
                    "spellings": ";".join(format_tokens(t) for _, t in spelled)})
    table = pd.DataFrame(out).sort_values("val_acc", ascending=False, na_position="last").reset_index(drop=True)
    table.attrs = {"format": 1, "units": 1, "ops": "paper", "affine": True, "synthetic": True,
                   "functions": len(out), "functions_in_space": len(out)}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/synthetic-paper-1unit.csv.gz"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"wrote {save_table(synthetic_table(args.seed), args.out)}")


if __name__ == "__main__":
    main()
