"""The `python -m search_space` command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from search_space import Space, parse
from search_space.cli import main


def test_sizes_prints_raw_and_distinct_sizes_honestly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sizes", "--ops", "small", "paper", "--units", "1", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {tuple(line.split()[:2]): line for line in lines[2:6]}
    assert rows[("small", "1")].split()[2:5] == ["144", "85", "exact"]
    assert rows[("small", "2")].split()[2:5] == ["82,944", "11,981", "exact"]
    assert rows[("paper", "1")].split()[2:5] == ["6,250", "3,989", "exact"]
    assert "156,250,000" in rows[("paper", "2")] and "n/a (too large)" in rows[("paper", "2")]


def test_sizes_can_estimate_by_sampling(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sizes", "--ops", "small", "--units", "3", "--samples", "50"]) == 0
    row = capsys.readouterr().out.splitlines()[2]
    assert ">= " in row and "50 samples; Chao1 lower bound ~" in row


def test_show_describes_an_expression(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "x*sigmoid(beta*x)"]) == 0
    out = capsys.readouterr().out
    assert "expression   x * sigmoid(beta * x)" in out
    assert parse("x * sigmoid(beta * x)").fingerprint() in out
    assert "screen       ok" in out
    assert "in spaces    paper/2, paper/3" in out
    assert "    0.00           0        0.5" in out  # swish at 0: value 0, slope 1/2


def test_show_reports_a_rejected_candidate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "x - x"]) == 0
    assert "rejected: constant" in capsys.readouterr().out


def test_enumerate_lists_the_space_in_token_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enumerate", "--units", "1", "--ops", "small"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [str(expr) for expr in Space(units=1, ops="small").enumerate()]
    assert main(["enumerate", "--units", "1", "--ops", "small", "--distinct", "--tokens", "--limit", "3"]) == 0
    assert capsys.readouterr().out.splitlines() == ["0 0 0 0 0\tx + x", "0 0 0 0 1\tx * x", "0 0 0 0 2\tmax(x, x)"]


def test_distinct_and_screened_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enumerate", "--units", "1", "--ops", "small", "--distinct"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 85
    assert main(["enumerate", "--units", "1", "--ops", "small", "--screened"]) == 0
    assert "x + -x" not in capsys.readouterr().out.splitlines()


def test_malformed_expression_prints_one_line_and_exits_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "search_space", "show", "x * sigmod(x"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if "Warning" not in line and "warnings.warn" not in line]
    assert errors == ["error: cannot parse 'x * sigmod(x' at column 5: unknown name 'sigmod'; did you mean 'sigmoid'?"]


def test_sizes_up_to_scale_and_offset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sizes", "--ops", "small", "--units", "1", "--affine"]) == 0
    out = capsys.readouterr().out
    assert " 79  exact" in out and "up to a positive output scale and an offset" in out
