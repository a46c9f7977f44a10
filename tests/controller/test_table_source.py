"""`--from-table`: a table's stratified subset (its top and a seeded random draw of the rest), and the CLI's errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from controller.tabular import example_table, save_table
from controller.validate import main
from controller.validation.table_source import TableSourceError, draw_subset, table_subset


def test_the_top_stratum_is_the_tables_best_ok_functions_and_the_random_one_comes_from_the_rest() -> None:
    table = example_table()
    ok = table[table["status"] == "ok"].sort_values("val_acc", ascending=False)
    subset = draw_subset(table, top=5, random=6, seed=0)
    assert list(subset["stratum"]) == ["top"] * 5 + ["random"] * 6
    top, drawn = subset[subset["stratum"] == "top"], subset[subset["stratum"] == "random"]
    assert list(top["fingerprint"]) == list(ok["fingerprint"][:5])
    assert list(top["proxy_rank"]) == [1, 2, 3, 4, 5]
    assert list(top["proxy_score"]) == pytest.approx(list(ok["val_acc"][:5]))
    assert set(drawn["fingerprint"]) <= set(ok["fingerprint"][5:])  # ok, outside the top, and distinct
    assert drawn["fingerprint"].is_unique and drawn["proxy_rank"].min() > 5
    assert list(drawn["proxy_score"]) == sorted(drawn["proxy_score"], reverse=True)
    rank_of = dict(zip(ok["fingerprint"], range(1, len(ok) + 1)))
    assert list(drawn["proxy_rank"]) == [rank_of[f] for f in drawn["fingerprint"]]


def test_the_draw_is_reproducible_independent_of_row_order_and_changes_with_the_seed() -> None:
    table = example_table()
    first = draw_subset(table, top=3, random=8, seed=0)
    shuffled = table.sample(frac=1.0, random_state=7).reset_index(drop=True)
    pd.testing.assert_frame_equal(first, draw_subset(table, top=3, random=8, seed=0))
    pd.testing.assert_frame_equal(first, draw_subset(shuffled, top=3, random=8, seed=0))
    other = draw_subset(table, top=3, random=8, seed=1)
    assert set(other["fingerprint"][:3]) == set(first["fingerprint"][:3])
    assert set(other["fingerprint"][3:]) != set(first["fingerprint"][3:])


def test_the_function_validated_is_the_canonical_text_the_table_trained() -> None:
    table = example_table()
    table["canonical"] = ["canonical of " + text for text in table["expression"]]
    table.loc[table.index[0], "canonical"] = ""  # no canonical form: the expression is used
    subset = draw_subset(table, top=len(table[table["status"] == "ok"]), random=0)
    by_fingerprint = table.set_index("fingerprint")
    for row in subset.itertuples():
        canonical = by_fingerprint.loc[row.fingerprint, "canonical"]
        assert row.function == (canonical or by_fingerprint.loc[row.fingerprint, "expression"])


def test_asking_for_more_than_the_table_holds_or_a_negative_count_is_refused() -> None:
    table = example_table()
    ok = int((table["status"] == "ok").sum())
    with pytest.raises(TableSourceError, match=f"only {ok} successfully trained"):
        draw_subset(table, top=ok, random=1)
    with pytest.raises(TableSourceError, match="--random must be 0 or more"):
        draw_subset(table, top=3, random=-1)


def test_a_table_file_reads_back_to_the_same_subset_and_a_bad_one_fails_with_its_path(tmp_path: Path) -> None:
    table = example_table()
    path = save_table(table, tmp_path / "t.csv.gz")
    subset, header = table_subset(path, top=2, random=3, seed=4)
    pd.testing.assert_frame_equal(subset, draw_subset(table, top=2, random=3, seed=4), check_exact=False, atol=1e-6)
    assert header["ops"] == "small"
    with pytest.raises(TableSourceError, match="no table at"):
        table_subset(tmp_path / "missing.csv.gz", top=2, random=3)
    (tmp_path / "bad.csv.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(TableSourceError, match="bad.csv.gz"):
        table_subset(tmp_path / "bad.csv.gz", top=2, random=3)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--from-table", "{tmp}/missing.csv.gz", "--top", "2", "--random", "2"], "no table at"),
        (["--from-table", "{tmp}/t.csv.gz", "--from-run", "demo"], "give one of them"),
        (["--expressions", "x", "--random", "3"], "add --from-table PATH"),
        (["--from-table", "{tmp}/t.csv.gz", "--top", "2", "--random", "500"], "ask for fewer"),
    ],
)
def test_the_cli_refuses_a_bad_table_source_in_one_line_before_any_store_or_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    save_table(example_table(), tmp_path / "t.csv.gz")
    argv = [a.format(tmp=tmp_path) for a in arguments] + ["--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    error = capsys.readouterr().err
    assert exit_.value.code == 2
    assert error.startswith("error: ") and error.count("\n") == 1 and message in error
    assert not (tmp_path / "out").exists()  # refused before a validation store was opened


def test_a_resume_that_would_draw_another_subset_is_refused_before_any_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from controller.validation.store import ValidationStore

    table = example_table()
    save_table(table, tmp_path / "t.csv.gz")
    store = ValidationStore(tmp_path / "out" / "t-validation.sqlite")
    store.set_meta("subset", draw_subset(table, top=2, random=2, seed=0).to_dict("records"))
    store.close()
    argv = ["--from-table", str(tmp_path / "t.csv.gz"), "--top", "2", "--random", "2", "--out", str(tmp_path / "out"),
            "--resume", "--baselines", "relu", "--models", "mlp", "--task", "xor", "--seeds", "1", "--steps", "5",
            "--workers", "1"]  # cheap settings, should the refusal ever be lost
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--subset-seed", "1"])
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and "another subset" in error and error.count("\n") == 1
    reopened = ValidationStore(tmp_path / "out" / "t-validation.sqlite")
    assert reopened.meta("grid") is None  # nothing of the other subset was recorded
    reopened.close()
