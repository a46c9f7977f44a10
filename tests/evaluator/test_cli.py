"""`python -m evaluator.score`: a readable report, JSON, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from evaluator.score import main


def _score(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "evaluator.score", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_prints_a_readable_result() -> None:
    done = _score("x * sigmoid(beta * x)", "--task", "xor", "--steps", "20", "--seeds", "2", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert "x * sigmoid(beta * x)  on xor / mlp" in done.stdout
    assert "status          ok" in done.stdout and "pred_diff" in done.stdout


def test_json_output_is_an_eval_result() -> None:
    done = _score("swish", "--task", "mnist1d", "--task-size", "300", "--steps", "5", "--json", "--threads", "1")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["expression"] == "swish" and result["status"] == "ok" and result["seeds"] == [0]


def test_bad_expression_in_a_fresh_process_is_one_line_and_exit_2() -> None:
    done = _score("foo(x", "--task", "xor")
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot parse" in lines[0] and "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["foo(x"], "cannot parse"),
    (["relux"], "Did you mean 'relu'"),
    (["relu", "--task", "mnist2d"], "unknown task 'mnist2d'"),
    (["relu", "--model", "resnet9"], "unknown model 'resnet9'"),
    (["relu", "--task", "xor", "--model", "resnet20"], "needs image input"),
    (["relu", "--task", "cifar10"], "needs --data-dir"),
    (["relu", "--optimizer", "lbfgs"], "invalid choice"),
    (["relu", "--bogus"], "unrecognized arguments"),
])
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture, args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as stop:
        main(args)  # in-process: the same code path as the command, without a second torch import
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and message in lines[0]
