"""Pictures of what a search found: the top functions and their slopes, search progress, the score histogram."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["plot_runs"]

_REFERENCES = {"relu": "max(x, 0)", "swish": "x * sigmoid(x)"}


def _curves(expression: str) -> tuple[object, object, object]:
    """Return x on [-5, 5], f(x) and f'(x) for an expression (float64, parameters at their initial values)."""
    import torch

    from search_space import parse

    module = parse(expression).to_module().double()
    x = torch.linspace(-5.0, 5.0, 401, dtype=torch.float64, requires_grad=True)
    y = module(x)
    (slope,) = torch.autograd.grad(y.sum(), x)
    return x.detach().numpy(), y.detach().numpy(), slope.numpy()


def _functions(axes: tuple[object, object], board: pd.DataFrame, top: int) -> None:
    value_ax, slope_ax = axes
    for name, text in _REFERENCES.items():
        x, y, slope = _curves(text)
        value_ax.plot(x, y, color="grey", linestyle="--", linewidth=1, label=name)
        slope_ax.plot(x, slope, color="grey", linestyle="--", linewidth=1)
    for row in board[board["status"] == "ok"].head(top).itertuples():
        try:
            x, y, slope = _curves(row.expression)
        except Exception:  # noqa: S112  (a function that cannot be drawn is left out of the picture)
            continue
        label = f"#{row.rank} {row.expression}"
        value_ax.plot(x, y, label=label if len(label) < 48 else label[:45] + "...")
        slope_ax.plot(x, slope)
    value_ax.set(title="top functions", xlabel="x", ylabel="f(x)", ylim=(-3, 5))
    slope_ax.set(title="their derivatives", xlabel="x", ylabel="f'(x)", ylim=(-2, 3))
    value_ax.legend(fontsize=7, loc="upper left")


def _progress(ax: object, runs: dict[str, pd.DataFrame]) -> None:
    for name, frame in runs.items():
        trained = frame[frame["trained"]]
        # failures have no score: carry the best so far across them instead of leaving gaps in the line
        best = trained["score"].where(trained["status"] == "ok").cummax().ffill()
        ax.plot(range(1, len(best) + 1), best.to_numpy(), label=name)
    ax.set(title="search progress", xlabel="trained candidates", ylabel="best score so far")
    ax.legend(fontsize=7)


def _histogram(ax: object, runs: dict[str, pd.DataFrame]) -> None:
    for name, frame in runs.items():
        trained = frame[frame["trained"]]
        ok = trained[trained["status"] == "ok"]["score"].dropna()
        failed = int((trained["status"] != "ok").sum())
        ax.hist(ok, bins=30, alpha=0.6, label=f"{name}: {len(ok)} ok, {failed} failed or screened")
    ax.set(title="score histogram", xlabel="validation accuracy", ylabel="candidates")
    ax.legend(fontsize=7)


def plot_runs(board: pd.DataFrame, runs: dict[str, pd.DataFrame], path: str | Path, top: int = 5) -> Path:
    """Draw the leaderboard's top functions and slopes, the progress and histogram of each run; save to `path`.

    The format follows the file name's suffix (.png or .svg).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"--plot needs a .png or .svg file name, got {str(path)!r}")
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    _functions((axes[0][0], axes[0][1]), board, top)
    _progress(axes[1][0], runs)
    _histogram(axes[1][1], runs)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
