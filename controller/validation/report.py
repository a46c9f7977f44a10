"""Statistics of a validation grid: accuracy per function and model, paired tests against ReLU, wins, Spearman.

A validation trains every (function, model, seed) once. Seeds are shared across functions, so two functions trained
with the same seed on the same model start from the same data order and initial weights (up to the activation's
own parameters): the comparison to ReLU is therefore paired by seed, which is what makes small differences testable.

A validation of a table's stratified subset (`--from-table`, `controller.validation.table_source`) is a second
fidelity for the table: `subset_scores` puts each function's proxy score beside its validated accuracy, and
`stratum_correlation` says how well the proxy orders the subset, its top stratum and its random stratum.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["ValidationReport", "summarise", "failures", "holm", "wins_table", "proxy_correlation",
           "prediction_difference", "subset_scores", "stratum_correlation"]

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


def holm(p_values: pd.Series) -> pd.Series:
    """Return Holm's step-down adjustment of `p_values` (NaN stays NaN and does not count as a comparison).

    A validation tests every function against ReLU on each model: with 10 functions, one of them beats ReLU at
    p < 0.05 by chance alone about 40 % of the time. Holm's adjusted p controls the chance of any false win at the
    level it is read at, and is never weaker than Bonferroni's.
    """
    tested = p_values.dropna().sort_values(kind="stable")
    m = len(tested)
    scaled = [min(1.0, (m - i) * p) for i, p in enumerate(tested)]
    adjusted = pd.Series(np.maximum.accumulate(scaled) if m else [], index=tested.index, dtype=float)
    return adjusted.reindex(p_values.index)


def _finished(trials: pd.DataFrame) -> pd.DataFrame:
    """Return the trials that finished with an accuracy (status "ok" where the table has a status column)."""
    ok = trials[trials["status"] == "ok"] if "status" in trials else trials
    return ok.dropna(subset=["test_acc"])


def failures(trials: pd.DataFrame) -> pd.DataFrame:
    """Return one row per (model, function) with trials that did not finish: how many failed, of how many tried,
    which seeds, and the first failure's reason (e.g. "non-finite training loss at step 6").

    A function that diverges on some seeds gets its mean from the seeds that survived, which flatters it; a
    function that diverges on all of them has no mean at all and would vanish from the ranking. Both must be said.
    """
    columns = ["model", "function", "failed", "tried", "failed_seeds", "reason"]
    if "status" not in trials:
        return pd.DataFrame(columns=columns)
    rows = []
    for (model, function), group in trials.groupby(["model", "function"], sort=True):
        failed = group[(group["status"] != "ok") | group["test_acc"].isna()].sort_values("seed")
        if failed.empty:
            continue
        reason = str(failed["reason"].iloc[0]) if "reason" in failed else str(failed["status"].iloc[0])
        rows.append({"model": model, "function": function, "failed": len(failed), "tried": len(group),
                     "failed_seeds": " ".join(str(int(seed)) for seed in failed["seed"]),
                     "reason": reason or str(failed["status"].iloc[0])})
    return pd.DataFrame(rows, columns=columns)


def summarise(trials: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Return one row per (model, function): mean/std test accuracy, rank, paired difference to the reference, and
    how many of its trials failed (`failed`; its mean is over the finished ones only).

    `trials` has one row per trial with columns `model, function, seed, test_acc`, optionally `status` (only "ok"
    rows are scored), `dead_rate` and `predictions` (an integer array of top-1 test predictions, for
    reproducibility).
    """
    ok = _finished(trials)
    failed = failures(trials).set_index(["model", "function"])["failed"]
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
                "failed": int(failed.get((model, function), 0)),
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
    table.insert(table.columns.get_loc("p_value") + 1, "p_holm", table.groupby("model")["p_value"].transform(holm))
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


def _spearman(proxy: list[float], validated: list[float]) -> tuple[float, float]:
    """Return Spearman's rho and its p-value; NaN for fewer than 3 pairs, and no p-value for fewer than 5."""
    if len(proxy) < 3:
        return float("nan"), float("nan")
    rho, p_value = stats.spearmanr(proxy, validated)
    if len(proxy) < 5:  # scipy's t approximation says p = 0 for a perfect rank of 3; too few to test
        p_value = float("nan")
    return float(rho), float(p_value)


def proxy_correlation(summary: pd.DataFrame, search_scores: dict[str, float]) -> pd.DataFrame:
    """Return the Spearman correlation, per model, between search (proxy) scores and validation accuracy."""
    rows = []
    for model, group in summary.groupby("model"):
        scored = group[group["function"].isin(search_scores)]
        rho, p_value = _spearman([search_scores[f] for f in scored["function"]], list(scored["mean"]))
        rows.append({"model": model, "functions": len(scored), "spearman": rho, "p_value": p_value})
    return pd.DataFrame(rows)


def subset_scores(summary: pd.DataFrame, subset: pd.DataFrame) -> pd.DataFrame:
    """Return one row per function of a table's subset: its stratum, proxy score and rank, and per model its
    validated mean and sd and its rank among the subset's functions (`<model>_mean`, `<model>_sd`, `<model>_rank`;
    1 = best, ties share the better rank, empty while the function has no finished trial).

    `subset` has the columns of `table_source.draw_subset` (function, stratum, proxy_score, proxy_rank).
    """
    scores = subset[["function", "stratum", "proxy_score", "proxy_rank"]].reset_index(drop=True)
    for model, group in summary.groupby("model", sort=True):
        by_function = group.set_index("function")
        mean = scores["function"].map(by_function["mean"])
        scores[f"{model}_mean"] = mean
        scores[f"{model}_sd"] = scores["function"].map(by_function["std"])
        scores[f"{model}_rank"] = mean.rank(ascending=False, method="min").astype("Int64")
    return scores


def stratum_correlation(scores: pd.DataFrame) -> pd.DataFrame:
    """Return Spearman's rho between proxy score and validated mean per model, over the whole subset ("all") and
    over each stratum of `subset_scores`' table; `functions` counts those with a validated mean."""
    models = [column[: -len("_mean")] for column in scores.columns if column.endswith("_mean")]
    strata = ["all", *dict.fromkeys(scores["stratum"])]
    rows = []
    for model in models:
        for stratum in strata:
            part = scores if stratum == "all" else scores[scores["stratum"] == stratum]
            part = part.dropna(subset=[f"{model}_mean"])
            rho, p_value = _spearman(list(part["proxy_score"]), list(part[f"{model}_mean"]))
            rows.append({"model": model, "stratum": stratum, "functions": len(part), "spearman": rho,
                         "p_value": p_value})
    return pd.DataFrame(rows)


@dataclass
class ValidationReport:
    """Everything a validation reports, as tables ready to print or write."""

    summary: pd.DataFrame
    wins: pd.DataFrame
    correlation: pd.DataFrame
    subset: pd.DataFrame = field(default_factory=pd.DataFrame)  # subset_scores of a table's subset; else empty
    strata: pd.DataFrame = field(default_factory=pd.DataFrame)  # stratum_correlation of that subset; else empty
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)  # `failures`: trials that did not finish

    @classmethod
    def build(
        cls, trials: pd.DataFrame, baselines: list[str], search_scores: dict[str, float] | None = None,
        subset: pd.DataFrame | None = None,
    ) -> ValidationReport:
        """Return the report of a trial table, failed trials included (see `summarise` for its columns); `subset` (a
        table's stratified subset, `table_source.draw_subset`) adds the proxy-against-validation tables."""
        summary = summarise(trials)
        failed = failures(trials)
        if summary.empty:
            return cls(summary=summary, wins=pd.DataFrame(), correlation=pd.DataFrame(), failures=failed)
        report = cls(summary=summary, wins=wins_table(summary, baselines),
                     correlation=proxy_correlation(summary, search_scores or {}), failures=failed)
        if subset is not None and not subset.empty:
            report.subset = subset_scores(summary, subset)
            report.strata = stratum_correlation(report.subset)
        return report
