"""How fast a run found its best: best score so far against candidates considered and against training steps spent.

Read from what every store row records (`controller.store.load_run`):

- candidates considered: what `--budget` counts, new functions trained or skipped by the pre-screen (rows that are
  not a repeat of a known function and either skipped or trained at rung 0), so that every run of a budget ends at
  it whatever its strategy repeats; `proposals` also counts the repeats and the screened (every rung-0 row).
  Promotions of a cascade (rung >= 1) and extra seeds are neither;
- training steps: per trained row, `metrics.steps - metrics.start_step` (a promotion continues from where its rung
  stopped) times the number of seeds that row trained (`metrics.seeds`: a seeds-rung row trains only the new
  seeds); steps are optimizer steps of one seed's training, whatever the row's status. A trained row without a
  recorded step count (an `error` or a killed `timeout`) adds none and is counted in `unrecorded_steps`;
- best score so far: the best `ok` score among rows that trained the full schedule (the largest `metrics.steps` in the
  run, so a cascade's lower-rung scores, measured after a fraction of the schedule, never count); a run that
  records no steps at all counts every trained row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["plot_progress", "progress_frame"]


def _row_steps(row: pd.Series) -> float | None:
    """Return the optimizer steps a trained row cost (all its seeds), or None when it records none."""
    metrics = row["metrics"] or {}
    steps = metrics.get("steps")
    if not row["trained"] or steps is None:
        return None
    seeds = metrics.get("seeds") or row["seeds"] or [0]
    return float((int(steps) - int(metrics.get("start_step") or 0)) * len(seeds))


def progress_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return one row per store row, in store order: the running counts and the best full-schedule score so far.

    Columns: `row` (store id), `candidates` (the budget's count), `proposals` (repeats and screened included),
    `trained` (distinct functions trained), `steps` (cumulative),
    `unrecorded_steps` (trained rows so far without a step count), `best_score` (NaN until a full-schedule `ok` row)
    and `best_expression`.

    >>> progress_frame(pd.DataFrame(columns=["id", "rung", "trained", "duplicate", "status", "score", "metrics",
    ...                                      "seeds", "expression"])).empty
    True
    """
    columns = ["row", "candidates", "proposals", "trained", "steps", "unrecorded_steps", "best_score",
               "best_expression"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.sort_values("id")
    rung = frame["rung"] if "rung" in frame else pd.Series(0, index=frame.index)
    # the loop's own rule (`controller.loop.RunLoop._count`): a new function skipped, or trained at the lowest rung
    skipped = frame["status"] == "skipped"
    new_candidate = ~frame["duplicate"].fillna(False).astype(bool) & (skipped | (frame["trained"] & (rung == 0)))
    cost = frame.apply(_row_steps, axis=1)
    recorded = frame["metrics"].map(lambda m: (m or {}).get("steps"))
    full = recorded.max() if recorded.notna().any() else None
    at_full = frame["trained"] & ((recorded == full) if full is not None else True)
    scores = frame["score"].where(at_full & (frame["status"] == "ok")).astype(float)
    best, best_expression = [], []
    score_so_far, expression_so_far = np.nan, None
    for score, expression in zip(scores, frame["expression"]):
        if not np.isnan(score) and not score <= score_so_far:  # the first to reach a best keeps it
            score_so_far, expression_so_far = score, expression
        best.append(score_so_far)
        best_expression.append(expression_so_far)
    return pd.DataFrame({
        "row": frame["id"].to_numpy(),
        "candidates": new_candidate.cumsum().to_numpy(),
        "proposals": (rung == 0).cumsum().to_numpy(),
        "trained": (frame["trained"] & (rung == 0)).cumsum().to_numpy(),
        "steps": cost.fillna(0.0).cumsum().astype(int).to_numpy(),
        "unrecorded_steps": (frame["trained"] & cost.isna()).cumsum().to_numpy(),
        "best_score": best,
        "best_expression": best_expression,
    })


def plot_progress(curves: dict[str, pd.DataFrame], path: str | Path) -> Path:
    """Draw best score so far against candidates and against training steps, one line per run; save to `path`.

    `curves` maps a label (a run's name and strategy) to its `progress_frame`; the format follows the suffix
    (.png or .svg).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"the progress plot needs a .png or .svg file name, got {str(path)!r}")
    fig, (by_candidates, by_steps) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, curve in curves.items():
        scored = curve[curve["best_score"].notna()]
        by_candidates.plot(scored["candidates"], scored["best_score"], drawstyle="steps-post", label=label)
        by_steps.plot(scored["steps"], scored["best_score"], drawstyle="steps-post", label=label)
    by_candidates.set(title="best score against candidates", xlabel="candidates considered (the --budget count)",
                      ylabel="best full-schedule score so far")
    by_steps.set(title="best score against compute", xlabel="training steps spent (all seeds)",
                 ylabel="best full-schedule score so far")
    for ax in (by_candidates, by_steps):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
