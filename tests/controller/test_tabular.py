"""The tabular benchmark: export of a real run store, save/load, replay under the run loop's rules, and the CLI."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from controller.arena import run_arena
from controller.store import EvaluationRow, RunStore
from controller.strategies.random_search import RandomSearch
from controller.table_replay import ReplayTrace, TableIndex, replay
from controller.tabular import _spellings, example_table, export_table, load_table, save_table, targets
from controller.tabular_cli import main
from search_space import Space, known
from tests.controller.scripted import Scripted

SPACE = Space(units=1, ops="small")


def _forms() -> dict[str, list[list[int]]]:
    return {code: [tokens for _, tokens in spelled] for code, spelled in _spellings(SPACE, True).items()}


@pytest.fixture(scope="module")
def picks() -> dict[str, Any]:
    """Token sequences of the small space for each role: a function with two spellings, relu, a screened one ..."""
    forms = _forms()
    relu = known.expression("relu").fingerprint(affine=True)
    multi = next(code for code, spelled in forms.items() if len(spelled) >= 2 and code != relu)
    screened = next(code for code, spelled in forms.items() if not SPACE.decode(spelled[0]).screen().ok)
    others = [code for code in forms if code not in (relu, multi, screened)]
    return {"forms": forms, "relu": relu, "multi": multi, "screened": screened, "nan": others[0], "plain": others[1],
            "absent": others[2]}


def _row(tokens: list[int], status: str, score: float | None = None, duplicate: bool = False,
         **metrics: Any) -> EvaluationRow:
    expr = SPACE.decode(tokens)
    return EvaluationRow(expression=str(expr), canonical=str(expr), fingerprint=expr.fingerprint(affine=True),
                         tokens=tokens, strategy="exhaustive", status=status, trained=status != "screened"
                         and not duplicate, duplicate=duplicate, score=score, seeds=[0, 1, 2],
                         reason="constant" if status == "screened" else "", metrics={"status": status, **metrics})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, picks: dict[str, Any]) -> Path:
    """A real run store as an exhaustive table run writes it (3 seeds, eval step 50; one row without dead_rate)."""
    path = tmp_path_factory.mktemp("table") / "run.sqlite"
    forms = picks["forms"]
    with RunStore(path) as writer:
        writer.set_meta({"config": {"units": 1, "ops": "small", "act_norm": "standardize", "eval_steps": [50],
                                    "seeds": 3, "task": "mnist1d"}, "versions": {"torch": "test"}})
        writer.append(_row(forms[picks["multi"]][0], "ok", 0.9, per_seed_val_acc=[0.89, 0.9, 0.91],
                           val_acc_std=0.008, dead_rate=0.1, val_acc_at={"50": [0.5, 0.6, 0.7]}))
        writer.append(_row(forms[picks["multi"]][1], "ok", 0.9, duplicate=True))
        writer.append(_row(forms[picks["relu"]][0], "ok", 0.8, per_seed_val_acc=[0.79, 0.8, 0.81],
                           val_acc_at={"50": [0.4, 0.4, 0.4]}))
        writer.append(_row(forms[picks["nan"]][0], "nan", reason="loss became NaN"))
        writer.append(_row(forms[picks["screened"]][0], "screened"))
        writer.append(_row(forms[picks["plain"]][0], "ok", 0.85, per_seed_val_acc=[0.84, 0.85, 0.86]))
    return path


def test_export_has_one_row_per_function_with_its_metrics(store: Path, picks: dict[str, Any]) -> None:
    table = export_table(store)
    assert len(table) == 5 and list(table["status"]) == ["ok", "ok", "ok", "nan", "screened"]
    best = table.iloc[0]
    assert best["fingerprint"] == picks["multi"] and best["val_acc"] == pytest.approx(0.9)
    assert best["forms"] == len(picks["forms"][picks["multi"]]) and best["val_acc_seeds"] == "0.89 0.9 0.91"
    assert best["val_acc_at_50"] == pytest.approx(0.6) and best["dead_rate"] == pytest.approx(0.1)
    assert best["expression"] == min((str(SPACE.decode(t)) for t in picks["forms"][picks["multi"]]),
                                     key=lambda text: (len(text), text))
    assert math.isnan(table.iloc[1]["dead_rate"])  # rows written before dead_rate existed
    assert table.iloc[2]["known"] == "relu" and table.iloc[4]["reason"] == "constant"
    assert {"monotonic", "smooth", "slope_pos_inf", "test_acc", "loss", "act_cost"} <= set(table.columns)
    assert table.attrs["functions"] == 5 and table.attrs["functions_in_space"] == len(picks["forms"])


@pytest.mark.parametrize("suffix", [".csv.gz", ".parquet"])
def test_save_and_load_round_trip(store: Path, tmp_path: Path, suffix: str) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    table = export_table(store, shapes=False)
    loaded = load_table(save_table(table, tmp_path / f"table{suffix}"))
    assert loaded.attrs == table.attrs
    assert list(loaded.columns) == list(table.columns)
    pd.testing.assert_series_equal(loaded["val_acc"], table["val_acc"], check_exact=False, rtol=1e-6)
    assert list(loaded["spellings"]) == list(table["spellings"]) and list(loaded["tokens"]) == list(table["tokens"])


def test_replay_follows_the_run_loops_rules(store: Path, picks: dict[str, Any]) -> None:
    forms, table = picks["forms"], export_table(store, shapes=False)
    script = [forms[picks["multi"]][1], forms[picks["multi"]][0], forms[picks["screened"]][0],
              forms[picks["nan"]][0], forms[picks["relu"]][0], forms[picks["nan"]][0]]
    strategy = Scripted(SPACE, script=script)
    trace = replay(strategy, table)
    assert strategy.told == [("ok", pytest.approx(0.9)), ("ok", pytest.approx(0.9)), ("screened", None),
                             ("nan", None), ("ok", pytest.approx(0.8)), ("nan", None)]
    assert strategy.duplicates == [1, 5]  # told as known functions' results, not as news
    assert (trace.evaluations, trace.duplicates, trace.screened, trace.failures) == (3, 2, 1, 1)
    assert trace.exhausted and trace.best_so_far() == [pytest.approx(0.9)] * 3
    assert trace.evaluations_to(0.9) == 1 and trace.evaluations_to(0.95) is None


def test_a_partial_table_skips_or_refuses_missing_functions(store: Path, picks: dict[str, Any]) -> None:
    table, forms = export_table(store, shapes=False), picks["forms"]
    script = [forms[picks["absent"]][0], forms[picks["relu"]][0]]
    with pytest.raises(KeyError, match="not in the table"):
        replay(Scripted(SPACE, script=script), table)
    strategy = Scripted(SPACE, script=script)
    trace = replay(strategy, table, missing="skip")
    assert trace.missing == 1 and trace.evaluations == 1 and strategy.told == [("ok", pytest.approx(0.8))]
    assert len(strategy.pending) == 1  # the skipped proposal is never told, like a result that never came back
    # A function new to the search is not idleness, even where the table has a hole; asking it again is.
    absent = forms[picks["absent"]]
    trace = replay(Scripted(SPACE, script=absent + absent + [forms[picks["relu"]][0]]), table, missing="skip",
                   max_idle=len(absent) + 1)
    assert trace.evaluations == 1  # then the script ends
    trace = replay(Scripted(SPACE, script=absent + absent + [forms[picks["relu"]][0]]), table, missing="skip",
                   max_idle=len(absent))
    assert trace.evaluations == 0 and trace.exhausted


def test_replay_is_deterministic_per_seed_and_takes_factories() -> None:
    index = TableIndex(example_table())
    first, again = (replay("rl", index, budget=12, seed=3, options={"update_every": 4}) for _ in range(2))
    assert first.fingerprints == again.fingerprints and first.evaluations == 12
    assert replay("random", index, budget=12, seed=0).fingerprints != replay("random", index, budget=12,
                                                                             seed=1).fingerprints
    trace = replay(lambda space, seed: RandomSearch(space, seed), index, budget=5, seed=0)
    assert isinstance(trace, ReplayTrace) and trace.strategy == "random" and trace.evaluations == 5
    assert trace.fingerprints == replay("random", index, budget=5, seed=0).fingerprints


def test_the_arena_in_two_processes_gives_the_same_traces_as_in_one() -> None:
    index = TableIndex(example_table())
    settings = {"seeds": 2, "budget": 15, "options": {"rl": {"update_every": 4}}}
    alone = run_arena(index, ["rl", "random"], **settings)
    seen: list[tuple[str, int]] = []
    shared = run_arena(index, ["rl", "random"], jobs=2, on_trace=lambda t: seen.append((t.strategy, t.seed)),
                       **settings)
    assert list(shared) == ["rl", "random"] and sorted(seen) == sorted((n, s) for n in shared for s in (0, 1))
    for name, traces in alone.items():
        assert [t.seed for t in shared[name]] == [0, 1]
        assert [t.fingerprints for t in shared[name]] == [t.fingerprints for t in traces]
        assert [t.scores for t in shared[name]] == [t.scores for t in traces]


def test_targets_use_relu_and_the_seed_noise(store: Path) -> None:
    aims = targets(export_table(store, shapes=False))
    assert aims["best"] == pytest.approx(0.9) and aims["trained"] == 4 and aims["top"] == 1
    assert aims["relu"] == pytest.approx(0.8) and aims["noise"] == pytest.approx(0.01)
    assert aims["beats_relu"] == pytest.approx(0.82)


def test_cli_exports_and_replays(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.csv.gz"
    assert main(["export", str(store), "--out", str(out), "--no-shapes"]) == 0
    assert "PARTIAL" in capsys.readouterr().out
    assert main(["replay", str(out), "--strategy", "random", "exhaustive", "--seeds", "2", "--missing", "skip",
                 "--plot", str(tmp_path / "arena.png")]) == 0
    printed = capsys.readouterr().out
    assert "| random |" in printed and "| exhaustive |" in printed and (tmp_path / "arena.png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["replay", "missing.csv.gz"], "no table at"),
    (["replay", "{table}", "--strategy", "nope"], "unknown strategy nope"),
    (["replay", "{table}", "--option", "rl:nope=1"], "has no option 'nope'"),
    (["replay", "{table}", "--option", "rl-lr"], "needs STRATEGY:KEY=VALUE"),
    (["replay", "{table}", "--seeds", "0"], "must be >= 1"),
    (["replay", "{table}", "--jobs", "0"], "must be >= 1"),
    (["export", "no-such-run", "--out", "x.csv.gz"], "no run store"),
    (["export", "{store}", "--out", "x.txt"], "saved as .csv.gz"),
    (["replay", "{store}"], "not a readable table"),
])
def test_cli_errors_are_one_line(argv: list[str], message: str, store: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    table = save_table(example_table(), tmp_path / "t.csv.gz")
    argv = [arg.format(table=table, store=store) for arg in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_a_table_whose_text_columns_are_all_empty_loads_them_as_text_without_a_warning(tmp_path: Path) -> None:
    table = example_table().assign(known="", reason="")
    save_table(table, tmp_path / "t.csv.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas warned (and will raise) on filling an all-NaN float column with ""
        loaded = load_table(tmp_path / "t.csv.gz")
    assert loaded["known"].tolist() == [""] * len(table) and loaded["reason"].tolist() == [""] * len(table)
