"""The validation report's statistics, checked on inputs whose answers are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from controller.validation.report import ValidationReport, prediction_difference, summarise, wins_table


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
