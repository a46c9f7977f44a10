"""The validation report's statistics, checked on inputs whose answers are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from controller.validation.report import (
    ValidationReport,
    holm,
    prediction_difference,
    stratum_correlation,
    summarise,
    wins_table,
)


def _trials() -> pd.DataFrame:
    rows = []
    accuracy = {
        ("m1", "relu"): [0.80, 0.82, 0.81],
        ("m1", "swish"): [0.83, 0.84, 0.85],
        ("m1", "tanh"): [0.70, 0.71, 0.69],
        ("m2", "relu"): [0.90, 0.91, 0.92],
        ("m2", "swish"): [0.89, 0.90, 0.91],
        ("m2", "tanh"): [0.95, 0.95, 0.95],
    }
    for (model, function), values in accuracy.items():
        for seed, acc in enumerate(values):
            rows.append({"model": model, "function": function, "seed": seed, "test_acc": acc, "dead_rate": 0.1})
    return pd.DataFrame(rows)


def test_paired_difference_and_p_value_match_scipy() -> None:
    summary = summarise(_trials())
    swish = summary[(summary.model == "m1") & (summary.function == "swish")].iloc[0]
    expected = stats.ttest_rel([0.83, 0.84, 0.85], [0.80, 0.82, 0.81]).pvalue
    assert swish["diff_vs_relu"] == pytest.approx(0.03)
    assert swish["p_value"] == pytest.approx(expected)
    assert swish["rank"] == 1
    assert swish["mean"] == pytest.approx(0.84)
    assert swish["std"] == pytest.approx(0.01)


def test_constant_difference_has_no_p_value_instead_of_a_fake_one() -> None:
    summary = summarise(_trials())
    swish_m2 = summary[(summary.model == "m2") & (summary.function == "swish")].iloc[0]
    assert swish_m2["diff_vs_relu"] == pytest.approx(-0.01)
    assert math.isnan(swish_m2["p_value"])


def test_holm_adjusts_each_p_by_the_comparisons_left_and_keeps_the_order() -> None:
    p_values = pd.Series([0.01, float("nan"), 0.04, 0.03, 0.2], index=list("abcde"))
    adjusted = holm(p_values)
    # 4 tests: 0.01*4 = 0.04, 0.03*3 = 0.09, 0.04*2 = 0.08 -> raised to 0.09 (monotone), 0.2*1 = 0.2
    assert adjusted["a"] == pytest.approx(0.04)
    assert adjusted["d"] == pytest.approx(0.09)
    assert adjusted["c"] == pytest.approx(0.09)
    assert adjusted["e"] == pytest.approx(0.2)
    assert math.isnan(adjusted["b"])
    assert holm(pd.Series([0.5, 0.9])).tolist() == [1.0, 1.0]


def test_summary_corrects_p_values_per_model() -> None:
    summary = summarise(_trials())
    for _, rows in summary.groupby("model"):
        assert (rows["p_holm"].fillna(1) >= rows["p_value"].fillna(1) - 1e-12).all()
        tested = rows["p_value"].notna().sum()
        if tested:
            smallest = rows.loc[rows["p_value"].idxmin()]
            assert smallest["p_holm"] == pytest.approx(min(1.0, tested * smallest["p_value"]))


def test_wins_count_models_where_a_function_beats_each_baseline() -> None:
    wins = wins_table(summarise(_trials()), baselines=["relu", "tanh"])
    assert wins.loc["swish", "relu"] == "1/0/1"
    assert wins.loc["swish", "tanh"] == "1/0/1"
    assert wins.loc["tanh", "relu"] == "1/0/1"
    assert "relu" not in wins.columns or pd.isna(wins.loc["relu", "relu"])


def test_prediction_difference_averages_over_pairs() -> None:
    a, b, c = np.array([0, 1, 2, 3]), np.array([0, 1, 2, 0]), np.array([1, 1, 2, 0])
    # pairs: a-b differ 1/4, a-c 2/4, b-c 1/4
    assert prediction_difference([a, b, c]) == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert math.isnan(prediction_difference([a]))


def test_proxy_correlation_is_spearman_of_search_scores_and_accuracy() -> None:
    report = ValidationReport.build(
        _trials(), baselines=["relu"], search_scores={"relu": 0.5, "swish": 0.6, "tanh": 0.1}
    )
    m1 = report.correlation.set_index("model").loc["m1"]
    assert m1["spearman"] == pytest.approx(1.0)
    m2 = report.correlation.set_index("model").loc["m2"]
    assert m2["spearman"] == pytest.approx(stats.spearmanr([0.5, 0.6, 0.1], [0.91, 0.90, 0.95])[0])


def test_report_is_written_as_markdown_csv_and_a_valid_png(tmp_path) -> None:
    from controller.validation.render import write_report

    report = ValidationReport.build(_trials(), baselines=["relu", "tanh"], search_scores={"relu": 0.5, "swish": 0.6})
    paths = write_report(report, tmp_path, "demo", {"command": "python -m controller.validate ..."})
    markdown, csv, png = paths
    text = markdown.read_text()
    assert "## m1" in text and "0.8400 ± 0.0100" in text and "1/0/1" in text
    assert pd.read_csv(csv).shape[0] == 6
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_trials_are_counted_and_reported_not_dropped(tmp_path) -> None:
    """A function that diverged on two of three seeds is scored on its one survivor and says "1 of 3"; one that
    diverged on every seed has no mean but is listed with its reason; nothing is silently dropped."""
    from controller.validation.render import write_report

    trials = _trials().assign(status="ok", reason="")
    diverged = [{"model": "m1", "function": "sinh", "seed": seed, "test_acc": None, "status": "nan",
                 "reason": f"non-finite training loss at step {seed + 1}"} for seed in range(3)]
    partly = [{"model": "m2", "function": "sinh", "seed": 0, "test_acc": 0.5, "status": "ok", "reason": ""}]
    partly += [{"model": "m2", "function": "sinh", "seed": seed, "test_acc": None, "status": "nan",
                "reason": "non-finite training loss at step 9"} for seed in (1, 2)]
    report = ValidationReport.build(pd.concat([trials, pd.DataFrame(diverged + partly)]), baselines=["relu"])

    m2 = report.summary.set_index(["model", "function"])
    assert m2.loc[("m2", "sinh"), "mean"] == 0.5 and m2.loc[("m2", "sinh"), "failed"] == 2
    assert m2.loc[("m2", "relu"), "failed"] == 0 and ("m1", "sinh") not in m2.index
    failed = report.failures.set_index(["model", "function"])
    assert failed.loc[("m1", "sinh"), "failed"] == 3 and failed.loc[("m1", "sinh"), "failed_seeds"] == "0 1 2"
    assert failed.loc[("m1", "sinh"), "reason"] == "non-finite training loss at step 1"
    assert failed.loc[("m2", "sinh"), "failed_seeds"] == "1 2" and len(failed) == 2

    text = write_report(report, tmp_path, "demo", {})[0].read_text()
    assert "## Trainings that did not finish" in text
    assert "| m1 | sinh | 3 of 3 | 0 1 2 | non-finite training loss at step 1 |" in text
    assert "| sinh | 0.5000 ± — | 1 of 3 |" in text


def test_a_report_where_every_training_failed_says_so_and_lists_them(tmp_path) -> None:
    from controller.validation.render import write_report

    trials = pd.DataFrame([{"model": "m1", "function": "sinh", "seed": seed, "test_acc": None, "status": "nan",
                            "reason": "non-finite training loss at step 1"} for seed in range(2)])
    paths = write_report(ValidationReport.build(trials, baselines=["relu"]), tmp_path, "demo", {})
    text = paths[0].read_text()
    assert "No training finished with a score." in text and "| m1 | sinh | 2 of 2 | 0 1 |" in text
    assert [p.suffix for p in paths] == [".md", ".csv"]


def test_a_report_without_failures_has_no_failure_section(tmp_path) -> None:
    from controller.validation.render import write_report

    report = ValidationReport.build(_trials().assign(status="ok", reason=""), baselines=["relu"])
    assert report.failures.empty and (report.summary["failed"] == 0).all()
    assert "did not finish" not in write_report(report, tmp_path, "demo", {})[0].read_text()


def _subset_trials() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Twelve functions (six top, six random) plus relu on one model; the validated order is known by hand."""
    names = [f"f{i:02d}" for i in range(12)]
    subset = pd.DataFrame({
        "function": names,
        "stratum": ["top"] * 6 + ["random"] * 6,
        "proxy_score": [0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.90, 0.80, 0.70, 0.60, 0.50, 0.40],
        "proxy_rank": [1, 2, 3, 4, 5, 6, 20, 35, 50, 65, 80, 95],
        "fingerprint": names,
    })
    # the top stratum comes out exactly reversed, the random one in the proxy's order, all below the top
    validated = [0.80, 0.81, 0.82, 0.83, 0.84, 0.85, 0.79, 0.78, 0.77, 0.76, 0.75, 0.74]
    rows = [{"model": "m1", "function": name, "seed": seed, "test_acc": acc + 0.01 * (seed - 1)}
            for name, acc in zip(names, validated) for seed in range(3)]
    rows += [{"model": "m1", "function": "relu", "seed": seed, "test_acc": 0.9} for seed in range(3)]
    return pd.DataFrame(rows), subset


def test_a_tables_subset_gets_spearman_over_the_subset_and_each_stratum() -> None:
    trials, subset = _subset_trials()
    report = ValidationReport.build(trials, baselines=["relu"], subset=subset,
                                    search_scores=dict(zip(subset["function"], subset["proxy_score"])))
    strata = report.strata.set_index("stratum")
    assert list(strata.index) == ["all", "top", "random"]
    assert strata.loc["top", "spearman"] == pytest.approx(-1.0)
    assert strata.loc["random", "spearman"] == pytest.approx(1.0)
    validated = [0.80, 0.81, 0.82, 0.83, 0.84, 0.85, 0.79, 0.78, 0.77, 0.76, 0.75, 0.74]
    expected = stats.spearmanr(subset["proxy_score"], validated)
    assert strata.loc["all", "spearman"] == pytest.approx(expected[0])
    assert strata.loc["all", "p_value"] == pytest.approx(expected[1])
    assert list(strata["functions"]) == [12, 6, 6]
    assert strata.loc["all", "spearman"] == pytest.approx(report.correlation["spearman"].iloc[0])  # same numbers


def test_the_subset_csv_has_each_functions_proxy_and_validated_ranks_and_relu_is_not_ranked_among_them() -> None:
    trials, subset = _subset_trials()
    trials = trials[trials["function"] != "f11"]  # not trained yet: no mean, no rank, not counted
    scores = ValidationReport.build(trials, baselines=["relu"], subset=subset).subset
    assert list(scores.columns) == ["function", "stratum", "proxy_score", "proxy_rank", "m1_mean", "m1_sd", "m1_rank"]
    assert "relu" not in set(scores["function"])
    row = scores.set_index("function").loc["f05"]
    assert row["m1_rank"] == 1 and row["m1_mean"] == pytest.approx(0.85) and row["m1_sd"] == pytest.approx(0.01)
    assert scores.set_index("function").loc["f06", "m1_rank"] == 7
    assert pd.isna(scores.set_index("function").loc["f11", "m1_rank"])
    strata = stratum_correlation(scores).set_index("stratum")
    assert strata.loc["random", "functions"] == 5


def test_the_markdown_lists_the_proxys_top_ten_as_the_model_ranks_them_and_the_csv_is_written(tmp_path) -> None:
    from controller.validation.render import write_report

    trials, subset = _subset_trials()
    report = ValidationReport.build(trials, baselines=["relu"], subset=subset)
    paths = write_report(report, tmp_path, "demo", {"command": "python -m controller.validate ..."})
    assert [p.name for p in paths] == ["demo.md", "demo.csv", "demo.png", "demo-subset.csv"]
    text = paths[0].read_text()
    section = text[text.index("### The proxy's top 10"):]
    table = [line for line in section.splitlines() if line.startswith("| ")][1:]  # rows after the header
    assert len(table) == 10
    assert table[0].startswith("| 1 | f00 | 0.9900 | 0.8000 ± 0.0100 | 6 of 12 |")
    assert table[9].startswith("| 65 | f09 | 0.6000 | 0.7600 ± 0.0100 | 10 of 12 |")
    assert "f10" not in section and "f11" not in section
    assert "| m1 | top | 6 | -1.000 |" in text
    written = pd.read_csv(paths[3])
    assert list(written["function"]) == list(subset["function"])
    assert list(written["m1_rank"]) == [6, 5, 4, 3, 2, 1, 7, 8, 9, 10, 11, 12]
