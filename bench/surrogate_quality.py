"""How well does the surrogate pre-screen predict the proxy's score, and what would it have skipped?

    python bench/surrogate_quality.py results/runs/table-paper-1unit          # a run store (or a run name)
    python bench/surrogate_quality.py RUN --folds 5 --skip-quantile 0.5 --explore 0.1
    python bench/surrogate_quality.py RUN --online-only --kappa 0 1 2     # the skip margin, side by side

Two views of the same question, on a finished (or growing) run: (1) cross-validated: a random forest on
`controller.surrogate.features` predicts held-out rows (5 folds), reporting Spearman between prediction and measured
score over the `ok` rows and, if the predicted bottom `--skip-quantile` of each fold had been skipped, how many of
the run's top 1 % and top 10 % would have been lost; (2) online, as in a run: `PreScreen` sees the rows in the
order they were recorded and decides each one before learning its score, reporting the share skipped (training
saved) and the top functions skipped. No training: only the rows' recorded scores.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from controller import load_run  # noqa: E402
from controller.surrogate import PreScreen, features  # noqa: E402
from search_space import parse  # noqa: E402


def _rows(path: str):
    frame = load_run(path)
    frame = frame[frame["trained"] & ~frame["duplicate"]].sort_values("id")
    if "rung" in frame:  # a cascade's first training of each function: the score the pre-screen learns from
        frame = frame[frame["rung"] == 0]
    return [(parse(row.expression), row.status, row.score) for row in frame.itertuples()]


def _top(scores: list[float], share: float) -> float:
    ranked = sorted(scores, reverse=True)
    return ranked[max(1, math.ceil(share * len(ranked))) - 1]


def cross_validated(rows, folds: int, skip_quantile: float, failure_score: float, seed: int) -> None:
    from sklearn.ensemble import RandomForestRegressor

    feats = [features(expr) for expr, _, _ in rows]
    keep = [i for i, f in enumerate(feats) if f is not None]
    x = np.stack([feats[i] for i in keep])
    y = np.array([rows[i][2] if rows[i][1] == "ok" else failure_score for i in keep])
    ok = np.array([rows[i][1] == "ok" for i in keep])
    order = np.random.default_rng(seed).permutation(len(keep))
    predicted = np.empty(len(keep))
    skipped = np.zeros(len(keep), dtype=bool)
    for fold in range(folds):
        test = order[fold::folds]
        train = np.setdiff1d(order, test)
        model = RandomForestRegressor(n_estimators=100, min_samples_leaf=2, n_jobs=1, random_state=seed)
        predicted[test] = model.fit(x[train], y[train]).predict(x[test])
        skipped[test] = predicted[test] < np.quantile(y[train], skip_quantile)
    rho = spearmanr(predicted[ok], y[ok]).statistic
    print(f"cross-validated ({folds} folds, {len(keep)} rows, {int(ok.sum())} ok): Spearman {rho:.3f} over ok rows")
    for share in (0.01, 0.10):
        threshold = _top(list(y[ok]), share)
        top = ok & (y >= threshold)
        print(f"  skip predicted < the {skip_quantile:.0%} quantile: {skipped.mean():.1%} of rows skipped; "
              f"top {share:.0%} ({int(top.sum())} rows, score >= {threshold:.4f}) kept {int((top & ~skipped).sum())}")


def online(rows, skip_quantile: float, explore: float, seed: int, kappa: float = 0.0) -> None:
    screen = PreScreen(skip_quantile=skip_quantile, explore=explore, seed=seed, kappa=kappa)
    scores = [score for _, status, score in rows if status == "ok"]
    thresholds = {share: _top(scores, share) for share in (0.01, 0.10)}
    skipped, lost = 0, {share: 0 for share in thresholds}
    start = time.perf_counter()
    for expr, status, score in rows:
        decision = screen.decide(expr)
        if not decision.train:
            skipped += 1
            for share, threshold in thresholds.items():
                lost[share] += status == "ok" and score >= threshold
            continue  # a skipped candidate is never trained, so the surrogate never learns its score
        screen.observe(expr, status, score)
    wall = time.perf_counter() - start
    print(f"online ({len(rows)} rows in run order, explore {explore:.0%}, kappa {kappa:g}): "
          f"skipped {skipped} ({skipped / len(rows):.1%})"
          + "".join(f"; top {share:.0%} lost {n}" for share, n in lost.items())
          + f"; {wall / len(rows) * 1000:.1f} ms per decision")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run name under results/runs/ or a run.sqlite path or its folder")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip-quantile", type=float, default=0.5)
    parser.add_argument("--explore", type=float, default=0.1)
    parser.add_argument("--failure-score", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kappa", type=float, nargs="+", default=[0.0],
                        help="online: skip only when mean + kappa x the trees' spread is below the quantile")
    parser.add_argument("--online-only", action="store_true", help="skip the cross-validated view")
    args = parser.parse_args()
    rows = _rows(args.run)
    print(f"{args.run}: {len(rows)} trained distinct functions")
    if not args.online_only:
        cross_validated(rows, args.folds, args.skip_quantile, args.failure_score, args.seed)
    for kappa in args.kappa:
        online(rows, args.skip_quantile, args.explore, args.seed, kappa)


if __name__ == "__main__":
    main()
