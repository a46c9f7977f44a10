"""Training compute until a top-1 % function is found: successive halving over steps against flat training, replayed
on a table run (one that recorded `--eval-steps`), with no training.

    python bench/cascade_replay.py results/runs/table-paper-1unit --rungs 50 150 300 --eta 3 --seeds 20
    python bench/cascade_replay.py RUN --strategies random rl --prescreen

Each replay drives a strategy through ask/tell with the run loop's dedup (an affine fingerprint seen before and a
screened function cost nothing). Flat: every candidate costs the top rung's steps and the strategy is told its
score there. Cascade (`controller.fidelity.Ladder`, one worker): a due promotion runs before any new candidate,
costing only the steps between its rungs (training continues); a new candidate costs the lowest rung and the
strategy is told its score at that rung. A rung's score is the table's seed-0 validation accuracy after that many
steps (`val_acc_at`, the same training run as the final score). Found: a function of the table's top 1 % (mean over
its seeds at the top rung) has been trained to the top rung. With `--prescreen`, `controller.surrogate.PreScreen`
skips predicted losers first (a skipped candidate costs nothing and is told as predicted). Reports steps until
found (mean, median over seeds; a replay that never finds it within --limit proposals is charged what it spent) and
the ratio flat / cascade.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from controller import RunStore, SearchExhausted, create_strategy, load_run  # noqa: E402
from controller.fidelity import Ladder  # noqa: E402
from controller.surrogate import PreScreen  # noqa: E402
from search_space import Space  # noqa: E402

STRATEGY_OPTIONS = {"rl": {}, "evolution": {}, "tpe": {}}


def load_curves(path: str, rungs: tuple[int, ...]) -> tuple[Space, dict[str, dict], set[str], set[str]]:
    """Return the space, fingerprint -> {"curve": seed-0 score per rung or None, "final": mean score}, the screened
    fingerprints, and the fingerprints of the top 1 %."""
    frame = load_run(path)
    store_path = path if str(path).endswith(".sqlite") else os.path.join(path, "run.sqlite")
    with RunStore(store_path, create=False) as store:
        config = store.get_meta()["config"]
    space = Space(units=config["units"], ops=config["ops"])
    rows = frame[~frame["duplicate"]]
    table, screened = {}, set(rows.loc[rows["status"] == "screened", "fingerprint"])
    for row in rows[rows["trained"]].itertuples():
        metrics = row.metrics or {}
        at = metrics.get("val_acc_at") or {}
        per_seed = metrics.get("per_seed_val_acc") or []
        curve = []
        for rung in rungs:
            values = per_seed if rung == rungs[-1] else at.get(str(rung))
            curve.append(values[0] if row.status == "ok" and values else None)
        table[row.fingerprint] = {"curve": curve, "final": row.score if row.status == "ok" else None}
    finals = sorted((v["final"] for v in table.values() if v["final"] is not None), reverse=True)
    threshold = finals[max(1, math.ceil(0.01 * len(finals))) - 1]
    top = {code for code, v in table.items() if v["final"] is not None and v["final"] >= threshold}
    return space, table, screened, top


@functools.cache
def _fingerprint(space: Space, tokens: tuple[int, ...]) -> str:
    return space.decode(tokens).fingerprint(affine=True)


def replay(name: str, seed: int, space: Space, table: dict, screened: set, top: set, rungs: tuple[int, ...],
           eta: int, cascade: bool, prescreen: bool, limit: int) -> tuple[int, bool, int]:
    """Return (steps spent, found, missing proposals skipped) of one replay."""
    strategy = create_strategy(name, space, seed=seed, **STRATEGY_OPTIONS.get(name, {}))
    ladder = Ladder(rungs=rungs if cascade else rungs[-1:], eta=eta)
    screen = PreScreen(seed=seed) if prescreen else None
    seen: set[str] = set()
    steps = missing = 0
    for _ in range(limit):
        promotion = ladder.next_promotion()
        if promotion is not None:
            code, rung = promotion
            ladder.start(code, rung)
            steps += ladder.rungs[rung] - ladder.rungs[rung - 1]
            ladder.record(code, rung, table[code]["curve"][rungs.index(ladder.rungs[rung])])
            if rung == ladder.top and code in top:
                return steps, True, missing
            continue
        try:
            proposal = strategy.ask()
        except SearchExhausted:
            break
        code = _fingerprint(space, tuple(proposal.tokens))
        if code in screened:
            strategy.tell(proposal.trial_id, "screened", None)
            continue
        if code not in table:  # a partial table: not measured yet; re-ask without counting
            missing += 1
            strategy.tell(proposal.trial_id, "error", None)
            continue
        if code in seen:
            score = ladder.scores[0].get(code)
            strategy.tell(proposal.trial_id, "ok" if score is not None else "nan", score)
            continue
        seen.add(code)
        if screen is not None:
            decision = screen.decide(proposal.expr)
            if not decision.train:
                strategy.tell(proposal.trial_id, "ok", decision.predicted)
                continue
        score = table[code]["curve"][rungs.index(ladder.rungs[0])]
        steps += ladder.rungs[0]
        ladder.record(code, 0, score)
        if screen is not None:
            screen.observe(proposal.expr, "ok" if score is not None else "nan", score)
        strategy.tell(proposal.trial_id, "ok" if score is not None else "nan", score)
        if ladder.top == 0 and code in top:
            return steps, True, missing
    return steps, False, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run store folder (or run.sqlite) recorded with --eval-steps")
    parser.add_argument("--rungs", type=int, nargs="+", default=[50, 150, 300])
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--strategies", nargs="+", default=["random", "rl"])
    parser.add_argument("--prescreen", action="store_true", help="also replay with the surrogate pre-screen")
    parser.add_argument("--limit", type=int, default=20000, help="proposals per replay before giving up")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rungs = tuple(args.rungs)
    space, table, screened, top = load_curves(args.run, rungs)
    print(f"{args.run}: {len(table)} trained functions, {len(screened)} screened, top 1% = {len(top)}; "
          f"rungs {list(rungs)}, eta {args.eta}, {args.seeds} seeds")
    modes = [("flat", False, False), ("cascade", True, False)]
    if args.prescreen:
        modes += [("prescreen+flat", False, True), ("prescreen+cascade", True, True)]
    print(f"{'strategy':<9} {'mode':<18} {'mean steps':>11} {'median':>9} {'found':>6} {'vs flat':>8} {'missing':>8}")
    for name in args.strategies:
        flat_mean = None
        for mode, cascade, prescreen in modes:
            runs = [replay(name, seed, space, table, screened, top, rungs, args.eta, cascade, prescreen, args.limit)
                    for seed in range(args.seeds)]
            spent = [steps for steps, _, _ in runs]
            mean = statistics.mean(spent)
            flat_mean = flat_mean or mean
            print(f"{name:<9} {mode:<18} {mean:11.0f} {statistics.median(spent):9.0f} "
                  f"{sum(found for _, found, _ in runs):>3}/{args.seeds} {flat_mean / mean:8.2f} "
                  f"{statistics.mean(m for _, _, m in runs):8.1f}", flush=True)


if __name__ == "__main__":
    main()
