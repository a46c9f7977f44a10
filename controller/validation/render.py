"""Writes a validation report as markdown, CSV and a plot of accuracy with error bars per model (and, for a table's
subset, a CSV of every function's proxy score beside its validated accuracy)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from controller.validation.report import REFERENCE, ValidationReport

__all__ = ["to_markdown", "write_report"]

PROXY_TOP = 10  # how many of the proxy's best functions the second-fidelity table lists


def _fmt(value: float, digits: int = 4) -> str:
    return "—" if pd.isna(value) else f"{value:.{digits}f}"


def _markdown_table(frame: pd.DataFrame) -> str:
    """Return a GitHub markdown table (pandas' to_markdown needs the optional tabulate package)."""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _seeds(finished: int, failed: int) -> str:
    """Return "5", or "3 of 5" when some of a function's trials failed (its mean is over the finished ones)."""
    return f"{finished} of {finished + failed}" if failed else str(finished)


def _failures_section(failures: pd.DataFrame) -> list[str]:
    rows = pd.DataFrame({"model": failures["model"], "function": failures["function"],
                         "failed": [f"{f} of {t}" for f, t in zip(failures["failed"], failures["tried"])],
                         "seeds": failures["failed_seeds"], "first reason": failures["reason"]})
    return [
        "", "## Trainings that did not finish", "",
        "A function's mean above is over its finished seeds only, which flatters one that diverges; one that failed "
        "on every seed of a model has no row in that model's table. A function that diverges on any seed is not a "
        "safe drop-in replacement.",
        "", _markdown_table(rows),
    ]


def _summary_rows(summary: pd.DataFrame, model: str) -> pd.DataFrame:
    rows = summary[summary["model"] == model]
    return pd.DataFrame(
        {
            "rank": rows["rank"],
            "function": rows["function"],
            "test accuracy": [f"{m:.4f} ± {_fmt(s)}" for m, s in zip(rows["mean"], rows["std"])],
            "seeds": [_seeds(n, failed) for n, failed in zip(rows["seeds"], rows.get("failed", [0] * len(rows)))],
            f"Δ vs {REFERENCE}": [_fmt(v, 4) for v in rows[f"diff_vs_{REFERENCE}"]],
            "p (paired t)": [_fmt(v, 3) for v in rows["p_value"]],
            "p (Holm)": [_fmt(v, 3) for v in rows["p_holm"]],
            "pred. diff": [_fmt(v, 4) for v in rows["pred_diff"]],
            "dead rate": [_fmt(v, 3) for v in rows["dead_rate"]],
        }
    )


def _strata_rows(strata: pd.DataFrame) -> pd.DataFrame:
    return strata.assign(spearman=[_fmt(v, 3) for v in strata["spearman"]],
                         p_value=[_fmt(v, 3) for v in strata["p_value"]])


def _proxy_top_rows(scores: pd.DataFrame, top: int = PROXY_TOP) -> pd.DataFrame:
    """Return the proxy's `top` best functions of the subset, with each model's mean ± sd and rank in the subset."""
    best = scores.sort_values(["proxy_rank", "function"]).head(top)
    rows = pd.DataFrame({"proxy rank": best["proxy_rank"], "function": best["function"],
                         "proxy score": [_fmt(v) for v in best["proxy_score"]]})
    for model in [column[: -len("_mean")] for column in scores.columns if column.endswith("_mean")]:
        rows[f"{model} test accuracy"] = [_fmt(m) if pd.isna(m) else f"{m:.4f} ± {_fmt(s)}"
                                          for m, s in zip(best[f"{model}_mean"], best[f"{model}_sd"])]
        ranked = scores[f"{model}_rank"].notna().sum()
        rows[f"{model} rank"] = ["—" if pd.isna(r) else f"{r} of {ranked}" for r in best[f"{model}_rank"]]
    return rows


def _subset_section(report: ValidationReport) -> list[str]:
    strata = ", ".join(f"{count} {stratum}" for stratum, count in report.subset["stratum"].value_counts(
        sort=False).items())
    return [
        "", "## The table's proxy against these models (a second fidelity)", "",
        f"The subset: {strata}. Spearman's rho between the table's proxy score (mean validation accuracy over its "
        "seeds) and the mean test accuracy here, over the whole subset and over each stratum:",
        "", _markdown_table(_strata_rows(report.strata)),
        "", f"### The proxy's top {PROXY_TOP} as these models rank them", "",
        "Proxy rank: rank in the whole table; model rank: rank among the subset's functions on that model.",
        "", _markdown_table(_proxy_top_rows(report.subset)),
    ]


def to_markdown(report: ValidationReport, title: str, context: dict[str, str]) -> str:
    """Return the whole report as markdown: context, one table per model, the wins table, proxy correlation."""
    lines = [f"# {title}", ""]
    lines += [f"- **{key}**: {value}" for key, value in context.items()]
    if report.summary.empty:
        lines += ["", "No training finished with a score."]
    for model in report.summary.get("model", pd.Series(dtype=str)).unique():
        lines += ["", f"## {model}", "", _markdown_table(_summary_rows(report.summary, model))]
    if not report.failures.empty:
        lines += _failures_section(report.failures)
    if not report.wins.empty:
        lines += [
            "",
            "## Wins across models",
            "",
            "Each cell: models on which the row's function has a higher / equal / lower mean than the column's.",
            "",
            _markdown_table(report.wins.reset_index().fillna("")),
        ]
    if not report.subset.empty:  # its "all" rows are the correlation below, so that table is not repeated
        lines += _subset_section(report)
    elif not report.correlation.empty:
        table = report.correlation.assign(
            spearman=[_fmt(v, 3) for v in report.correlation["spearman"]],
            p_value=[_fmt(v, 3) for v in report.correlation["p_value"]],
        )
        lines += ["", "## How well the search proxy predicted these models (Spearman)", "", _markdown_table(table)]
    lines += [
        "",
        "Δ is the mean paired difference to ReLU over shared seeds; p is the paired t-test's p-value (— when fewer "
        "than two pairs or identical differences) and p (Holm) the same corrected for the number of functions tested "
        "against ReLU on that model (Holm's step-down method): read a win as significant only by the corrected one. "
        "Pred. diff is the fraction of test examples whose top-1 prediction differs between two retrains with other "
        "seeds (lower is more reproducible).",
        "",
    ]
    return "\n".join(lines)


def _plot(report: ValidationReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(report.summary["model"].unique())
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        rows = report.summary[report.summary["model"] == model].sort_values("mean")
        ax.barh(rows["function"], rows["mean"], xerr=rows["std"].fillna(0.0), color="tab:blue", alpha=0.8)
        low = float((rows["mean"] - rows["std"].fillna(0.0)).min())
        ax.set_xlim(max(0.0, low - 0.02), min(1.0, float(rows["mean"].max()) + 0.02))
        ax.set_title(model)
        ax.set_xlabel("test accuracy (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report: ValidationReport, out_dir: Path, name: str, context: dict[str, str]) -> list[Path]:
    """Write `<name>.md`, `<name>.csv` (one row per model and function) and `<name>.png` under `out_dir`, and for a
    table's subset `<name>-subset.csv` (one row per function: stratum, proxy score and rank, per model mean, sd and
    rank); return their paths. With no finished training there is nothing to plot: no png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, csv, png = (out_dir / f"{name}{suffix}" for suffix in (".md", ".csv", ".png"))
    markdown.write_text(to_markdown(report, f"Validation: {name}", context))
    report.summary.to_csv(csv, index=False)
    paths = [markdown, csv]
    if not report.summary.empty:
        _plot(report, png)
        paths.append(png)
    if not report.subset.empty:
        paths.append(out_dir / f"{name}-subset.csv")
        report.subset.to_csv(paths[-1], index=False, float_format="%.6g")
    return paths
