"""The run loop on a real local Ray, in process: worker deaths are retried then recorded, hangs time out, and the
strategy hears which proposals repeat a known function."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import RunConfig
from controller.loop import RunLoop
from controller.store import RunStore
from controller.strategies import create_strategy
from controller.tabular import _spellings
from search_space import Space
from tests.controller.batch_functions import dying_or_hanging_batch
from tests.controller.scripted import Scripted


@pytest.mark.slow
def test_dead_workers_are_retried_then_recorded_and_hangs_time_out(local_ray: None, tmp_path: Path) -> None:
    import ray

    ray.get([ray.remote(dying_or_hanging_batch).remote(["x"], "", None, {}) for _ in range(4)])  # warm workers
    # Raw outputs: the stub's fates are keyed by expression, and standardised runs would merge x + x with max(x, x).
    config = RunConfig(budget=5, strategy="exhaustive", units=1, ops="small", workers=2, timeout=1.0, seeds=2,
                       max_attempts=2, task_batch=1, out=str(tmp_path), act_norm="none", rungs=[], prescreen=False,
                       top_seeds=0)  # flat: the stub trains nothing, it only meets fates
    with RunStore(config.store_path) as store:
        strategy = create_strategy("exhaustive", Space(units=1, ops="small"))
        loop = RunLoop(config, store, strategy, evaluate=dying_or_hanging_batch)
        loop.hard_timeout_grace_s = 10.0  # a new worker replacing a dead one must start within this
        progress = loop.run()
        rows = {row.expression: row for row in store.rows()}
    assert progress.trained == 5 and progress.failures == 2
    assert rows["sigmoid(x) * x"].status == "error" and rows["sigmoid(x) * x"].attempts == 2
    assert "failed 2 times" in rows["sigmoid(x) * x"].reason
    assert rows["max(x, x)"].status == "timeout" and "--timeout 1 s" in rows["max(x, x)"].reason
    assert rows["x + -x"].status == "screened" and not rows["x + -x"].trained
    assert [rows[e].status for e in ("x + x", "x * x", "x * -x")] == ["ok", "ok", "ok"]
    assert rows["x + x"].reason == "time_limit_s=1.0"  # --timeout is per candidate, all seeds: the evaluator's unit
    assert not strategy.pending  # every asked trial was told


def test_tasks_carry_the_evaluators_pack_size_unless_a_task_batch_is_given() -> None:
    from evaluator import packing_policy

    cpu = packing_policy("resnet8_1d", "cpu")  # mnist1d's default child network
    assert cpu > 1
    assert RunConfig(budget=1).candidates_per_task() == cpu
    assert RunConfig(budget=1, seeds=3).candidates_per_task() == max(1, cpu // 3)  # slots are candidates x seeds
    assert RunConfig(budget=1, gpus_per_worker=0.5).candidates_per_task() == packing_policy("resnet8_1d", "cuda")
    assert RunConfig(budget=1, task="xor").candidates_per_task() == packing_policy("mlp", "cpu")
    assert RunConfig(budget=1, model="cnn_1d").candidates_per_task() == 1  # not packed: one candidate per task
    assert RunConfig(budget=1, task_batch=3).candidates_per_task() == 3
    with pytest.raises(ValueError, match="task_batch must be a positive integer"):
        RunConfig(budget=1, task_batch=0)


def test_pack_size_the_old_name_of_task_batch_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    from controller.run import make_config, parse_args

    args = parse_args(["--budget", "1", "--pack-size", "2"])
    assert args.task_batch == 2
    assert "--pack-size is deprecated; use --task-batch" in capsys.readouterr().err
    assert RunConfig.from_dict({"budget": 1, "pack_size": 3}).task_batch == 3  # a config stored by an older run
    assert make_config(parse_args(["--resume"]), {"budget": 1, "pack_size": 3}).task_batch == 3
    assert RunConfig.from_dict({"budget": 1, "pack_size": 3, "task_batch": 4}).task_batch == 4


@pytest.mark.slow  # cheap beside the test above, which starts this module's Ray
def test_the_strategy_is_told_which_proposals_repeat_a_known_function(local_ray: None, tmp_path: Path) -> None:
    space = Space(units=1, ops="small")
    repeated, other = [[tokens for _, tokens in forms] for forms in _spellings(space, True).values()
                       if len(forms) > 1 and space.decode(forms[0][1]).screen().ok][:2]  # run loop's fingerprint
    strategy = Scripted(space, script=[repeated[0], repeated[1], other[0]])
    config = RunConfig(budget=2, strategy="scripted", units=1, ops="small", task="digits", model="mlp", steps=4,
                       batch_size=32, device="cpu", workers=1, task_batch=1, out=str(tmp_path), rungs=[],
                       top_seeds=0)  # one row per function
    with RunStore(config.store_path) as store:
        RunLoop(config, store, strategy).run()
        rows = list(store.rows())
    assert [row.duplicate for row in rows] == [False, True, False]
    assert strategy.duplicates == [1] and strategy.told[1] == strategy.told[0]
