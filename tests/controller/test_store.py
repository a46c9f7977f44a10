"""The run store on real SQLite files: append-only rows, metadata, checkpoints, schema versions, load_run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import torch

from controller.store import SCHEMA_VERSION, EvaluationRow, RunStore, StoreError, load_run


def make_row(i: int, status: str = "ok", **extra: object) -> EvaluationRow:
    score = 0.5 + i / 100 if status == "ok" else None
    fields = dict(
        expression=f"x + {i}", canonical=f"x + {i}", fingerprint=f"{i:032x}", tokens=[0, i, 0, 1, 2],
        strategy="random", status=status, trained=True, score=score, trial_id=i,
        metrics={"val_acc": score, "test_acc": 0.4, "loss": 1.0, "per_seed_val_acc": [score]}, seeds=[0],
        worker="node:1", started_at=1.0, finished_at=2.0,
    )
    fields.update(extra)
    return EvaluationRow(**fields)


def test_rows_are_appended_and_read_back_in_order(tmp_path: Path) -> None:
    with RunStore(tmp_path / "run.sqlite") as store:
        ids = [store.append(make_row(i)) for i in range(5)]
        store.append(make_row(5, status="nan", reason="loss became NaN at step 3"))
        store.append(make_row(6, status="ok", trained=False, duplicate=True))
        assert ids == [1, 2, 3, 4, 5]
        rows = list(store.rows())
        assert [row.trial_id for row in rows] == list(range(7))
        assert rows[5].status == "nan" and rows[5].score is None and rows[5].reason.startswith("loss")
        assert rows[0].tokens == [0, 0, 0, 1, 2] and rows[0].metrics["per_seed_val_acc"] == [0.5]
        assert [row.id for row in store.rows(after=5)] == [6, 7]
        assert store.count_trained() == 6


def test_store_uses_wal_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with RunStore(path) as store:
        store.append(make_row(1))
        store.set_meta({"config": {"budget": 3, "strategy": "rl"}})
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with RunStore(path, create=False) as store:
        assert store.get_meta()["config"] == {"budget": 3, "strategy": "rl"}
        assert store.get_meta()["schema_version"] == SCHEMA_VERSION
        assert len(list(store.rows())) == 1


def test_checkpoints_cover_the_rows_written_before_them(tmp_path: Path) -> None:
    with RunStore(tmp_path / "run.sqlite") as store:
        assert store.load_checkpoint() is None
        store.append(make_row(1))
        store.save_checkpoint({"weights": torch.arange(3.0), "pending": [[1, [0, 1]]]})
        store.append(make_row(2))
        store.append(make_row(3))
        store.save_checkpoint({"weights": torch.ones(2), "rng": (3, (1, 2), None)})
        store.append(make_row(4))
        state, last_row = store.load_checkpoint()
        assert last_row == 3
        assert torch.equal(state["weights"], torch.ones(2))
        for _ in range(5):
            store.save_checkpoint({"n": 1})
        assert store._db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 2  # old ones pruned


def test_checkpoint_loading_refuses_arbitrary_objects(tmp_path: Path) -> None:
    with RunStore(tmp_path / "run.sqlite") as store:
        store.save_checkpoint({"bad": Path("/")})  # not a tensor or plain data: weights_only refuses it
        with pytest.raises(Exception, match="[Ww]eights only"):
            store.load_checkpoint()


def test_newer_schema_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with RunStore(path) as store:
        store.set_meta({"schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(StoreError, match="newer actsearch.*upgrade"):
        RunStore(path)


def test_missing_or_foreign_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no run store"):
        RunStore(tmp_path / "missing.sqlite", create=False)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable run store"):
        RunStore(junk)
    with pytest.raises(StoreError, match="no run store"):
        load_run(tmp_path / "nothing")


def test_load_run_gives_one_row_per_evaluation(tmp_path: Path) -> None:
    with RunStore(tmp_path / "run.sqlite") as store:
        for i in range(3):
            store.append(make_row(i))
        store.append(make_row(3, status="timeout", reason="over 5 s"))
    frame = load_run(tmp_path)  # a run folder works as well as the file
    assert len(frame) == 4
    assert {"expression", "canonical", "fingerprint", "status", "score", "tokens", "metrics"} <= set(frame.columns)
    assert frame["status"].tolist() == ["ok", "ok", "ok", "timeout"]
    assert frame["score"].isna().tolist() == [False, False, False, True]
    assert frame["tokens"][0] == [0, 0, 0, 1, 2] and frame["trained"].all()


def test_a_version_1_store_gains_the_rung_column_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with RunStore(path) as store:
        store.append(make_row(1))
        store.append(make_row(1, rung=1, score=0.9))
    with sqlite3.connect(path) as db:  # what version 1 wrote: no rung column
        db.execute("ALTER TABLE evaluations DROP COLUMN rung")
        db.execute("DELETE FROM evaluations WHERE id = 2")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    assert "rung" in load_run(path) and load_run(path)["rung"].tolist() == [0]  # readers fill it in
    with RunStore(path, create=False) as reader:  # a reader leaves it as it is (its driver may be older)
        assert [row.rung for row in reader.rows()] == [0]
        with pytest.raises(StoreError, match="version-1 store, which has no rungs"):
            reader.append(make_row(3, rung=1))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
    with RunStore(path, lease=True) as store:  # its writer brings it to version 2
        assert [row.rung for row in store.rows()] == [0]
        store.append(make_row(2, rung=2))
        assert [row.rung for row in store.rows()] == [0, 2] and store.count_trained() == 1
        assert store.get_meta()["schema_version"] == SCHEMA_VERSION == 2
