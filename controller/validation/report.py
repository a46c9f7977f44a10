"""Statistics of a validation grid: accuracy per function and model, paired tests against ReLU, wins, Spearman.

A validation trains every (function, model, seed) once. Seeds are shared across functions, so two functions trained
with the same seed on the same model start from the same data order and initial weights (up to the activation's
own parameters): the comparison to ReLU is therefore paired by seed, which is what makes small differences testable.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["ValidationReport", "summarise", "wins_table", "proxy_correlation", "prediction_difference"]

REFERENCE = "relu"


def prediction_difference(predictions: list[np.ndarray]) -> float:
    """Return the mean fraction of examples whose top-1 prediction differs between two retrains, over all pairs.

    This is the reproducibility measure of the SmeLU paper: identical models retrained with other seeds should
    agree on their predictions; smooth activations make them agree more often.
    """
    pairs = list(itertools.combinations(predictions, 2))
    if not pairs:
        return float("nan")
    return float(np.mean([np.mean(a != b) for a, b in pairs]))


def _paired_test(candidate: pd.Series, reference: pd.Series) -> tuple[float, float, int]:
    """Return (mean difference, p-value of a paired t-test, number of pairs) over shared seeds."""
    joined = pd.concat([candidate, reference], axis=1, join="inner").dropna()
    n = len(joined)
    if n == 0:
        return float("nan"), float("nan"), 0
    diff = joined.iloc[:, 0] - joined.iloc[:, 1]
    if n < 2 or float(diff.std(ddof=1)) < 1e-12:  # identical differences: the t statistic is undefined
        return float(diff.mean()), float("nan"), n
    return float(diff.mean()), float(stats.ttest_rel(joined.iloc[:, 0], joined.iloc[:, 1]).pvalue), n


def summarise(trials: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Return one row per (model, function): mean/std test accuracy, rank, paired difference to the reference.

    `trials` has one row per finished trial with columns `model, function, seed, test_acc` and optionally
    `dead_rate` and `predictions` (an integer array of top-1 test predictions, for reproducibility).
    """
    ok = trials.dropna(subset=["test_acc"])
    rows = []
    for (model, function), group in ok.groupby(["model", "function"], sort=True):
        by_seed = group.set_index("seed")["test_acc"]
        ref = ok[(ok["model"] == model) & (ok["function"] == reference)].set_index("seed")["test_acc"]
        diff, p_value, pairs = _paired_test(by_seed, ref) if function != reference else (0.0, float("nan"), 0)
        predictions = [p for p in group.get("predictions", pd.Series(dtype=object)) if p is not None]
        rows.append(
            {
                "model": model,
                "function": function,
                "seeds": len(group),
                "mean": float(by_seed.mean()),
                "std": float(by_seed.std(ddof=1)) if len(group) > 1 else float("nan"),
                f"diff_vs_{reference}": diff,
                "p_value": p_value,
                "pairs": pairs,
                "pred_diff": prediction_difference([np.asarray(p) for p in predictions]),
                "dead_rate": float(group["dead_rate"].mean()) if "dead_rate" in group else float("nan"),
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["rank"] = table.groupby("model")["mean"].rank(ascending=False, method="min").astype(int)
    return table.sort_values(["model", "rank", "function"]).reset_index(drop=True)


def wins_table(summary: pd.DataFrame, baselines: list[str]) -> pd.DataFrame:
    """Return, per function and baseline, on how many models the function's mean beats, ties or trails it.

    This is the paper's table ("Swish outperforms ReLU on 9 of 9 models"): a count across models, not a test.
    """
    means = summary.pivot(index="model", columns="function", values="mean")
    rows = []
    for function in means.columns:
        row: dict[str, object] = {"function": function}
        for baseline in baselines:
            if baseline == function or baseline not in means.columns:
                continue
            both = means[[function, baseline]].dropna()
            better = int((both[function] > both[baseline]).sum())
            equal = int((both[function] == both[baseline]).sum())
            row[baseline] = f"{better}/{equal}/{len(both) - better - equal}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("function") if rows else pd.DataFrame()


def proxy_correlation(summary: pd.DataFrame, search_scores: dict[str, float]) -> pd.DataFrame:
    """Return the Spearman correlation, per model, between search (proxy) scores and validation accuracy."""
    rows = []
    for model, group in summary.groupby("model"):
        scored = group[group["function"].isin(search_scores)]
        proxy = [search_scores[f] for f in scored["function"]]
        if len(scored) >= 3:
            rho, p_value = stats.spearmanr(proxy, scored["mean"])
            if len(scored) < 5:  # scipy's t approximation says p = 0 for a perfect rank of 3; too few to test
                p_value = float("nan")
        else:
            rho, p_value = float("nan"), float("nan")
        rows.append({"model": model, "functions": len(scored), "spearman": float(rho), "p_value": float(p_value)})
    return pd.DataFrame(rows)


@dataclass
class ValidationReport:
    """Everything a validation reports, as tables ready to print or write."""

    summary: pd.DataFrame
    wins: pd.DataFrame
    correlation: pd.DataFrame

    @classmethod
    def build(
        cls, trials: pd.DataFrame, baselines: list[str], search_scores: dict[str, float] | None = None
    ) -> ValidationReport:
        """Return the report of a trial table (see `summarise` for its columns)."""
        summary = summarise(trials)
        wins = wins_table(summary, baselines) if not summary.empty else pd.DataFrame()
        correlation = proxy_correlation(summary, search_scores or {}) if not summary.empty else pd.DataFrame()
        return cls(summary=summary, wins=wins, correlation=correlation)
