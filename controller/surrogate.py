"""A surrogate pre-screen: predict a proposal's score before training it, and skip the hopeless ones.

Features need no training: the candidate as the network sees it, i.e. its output standardised under N(0, 1)
(`evaluator.models.standardise`), read at fixed points, with its slopes there. A random forest (scikit-learn) is
fitted online on the run's own trained rows; failed trainings count as chance-level scores, so the surrogate also
learns to avoid regions that diverge. Until `min_rows` rows are in, and for an `explore` share of the proposals it
would skip, everything is trained, so the surrogate cannot starve a region it has not seen.

>>> from search_space import parse
>>> screen = PreScreen(min_rows=4, refit_every=1, explore=0.0)
>>> for text, score in [("x", 0.3), ("max(x, 0)", 0.95), ("tanh(x)", 0.8), ("sin(x)", 0.7), ("x * x", 0.2),
...                     ("abs(x)", 0.6)]:
...     screen.observe(parse(text), "ok", score)
>>> screen.decide(parse("abs(x) + x")).train, screen.decide(parse("x * x * x")).train
(True, False)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from search_space import Expr

__all__ = ["PreScreen", "ScreenDecision", "features", "tree_spread"]

_GRID = torch.linspace(-4.0, 4.0, 33, dtype=torch.float32)  # where a standardised pre-activation mostly lives


def features(expr: Expr) -> np.ndarray | None:
    """Return the standardised function's values and slopes on a grid of [-4, 4] (66 numbers), or None when the
    function cannot be standardised there (not finite, or constant)."""
    from evaluator.models.standardise import output_moments

    module = expr.to_module()
    mean, std = output_moments(module, points=2048)  # features need 3 digits, not the training's 5
    if not (math.isfinite(mean) and math.isfinite(std)) or std < 1e-6:
        return None
    x = _GRID.clone().view(-1, 1).requires_grad_(True)  # (33, 1): channel dim 1
    with torch.enable_grad():
        values = module(x)
        (slopes,) = torch.autograd.grad(values.sum(), x, allow_unused=True)
    slopes = torch.zeros_like(x) if slopes is None else slopes
    out = np.concatenate([((values.detach() - mean) / std).flatten().numpy(), (slopes / std).flatten().numpy()])
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=1e3, neginf=-1e3), -1e3, 1e3).astype(np.float64)


def tree_spread(forest, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and the standard deviation of a fitted random forest's trees' predictions, per row of `rows`:
    the spread says how far the trees disagree, the margin both the pre-screen and the surrogate strategy add."""
    per_tree = np.stack([tree.predict(rows) for tree in forest.estimators_])  # (trees, rows)
    return per_tree.mean(axis=0), per_tree.std(axis=0)


@dataclass(frozen=True)
class ScreenDecision:
    """Whether to train a proposal, the predicted score (None before the surrogate is fitted) and why."""

    train: bool
    predicted: float | None
    reason: str


class PreScreen:
    """Online surrogate of the proxy's score with a skip rule: predicted below the `skip_quantile` of the scores
    seen so far is skipped, except for an `explore` share of such proposals (seeded, so a run is reproducible).

    With `kappa` > 0 a proposal is skipped only when its optimistic prediction, the forest's mean plus `kappa` times
    the spread of its trees, is below that quantile: "far below", not merely below. This matters once a search has
    converged on one family: its proposals then score within noise of the run's median, and a plain mean below the
    median would skip half of them on differences the forest cannot resolve.
    """

    def __init__(self, min_rows: int = 64, refit_every: int = 32, skip_quantile: float = 0.5, explore: float = 0.1,
                 failure_score: float = 0.1, seed: int = 0, kappa: float = 0.0) -> None:
        if not 0.0 <= skip_quantile < 1.0 or not 0.0 <= explore <= 1.0 or kappa < 0.0:
            raise ValueError(f"skip_quantile must be in [0, 1), explore in [0, 1] and kappa >= 0, got {skip_quantile}, "
                             f"{explore}, {kappa}")
        self.min_rows, self.refit_every = min_rows, refit_every
        self.skip_quantile, self.explore, self.failure_score, self.kappa = skip_quantile, explore, failure_score, kappa
        self._rng = random.Random(seed)
        self._seed = seed
        self._x: list[np.ndarray] = []
        self._y: list[float] = []
        self._model = None
        self._fitted_on = 0

    def observe(self, expr: Expr, status: str, score: float | None) -> None:
        """Add a trained candidate's outcome (a failure counts as `failure_score`)."""
        row = features(expr)
        if row is None:
            return
        self._x.append(row)
        self._y.append(score if status == "ok" and score is not None else self.failure_score)

    def predict(self, expr: Expr) -> float | None:
        """Return the predicted score, or None before `min_rows` outcomes or for a function without features."""
        predicted = self._predict(expr)
        return None if predicted is None else predicted[0]

    def _predict(self, expr: Expr) -> tuple[float, float] | None:
        """Return (the forest's mean prediction, the standard deviation of its trees' predictions), or None."""
        self._refit()
        row = features(expr)
        if self._model is None or row is None:
            return None
        if not self.kappa:
            return float(self._model.predict(row[None])[0]), 0.0
        mean, spread = tree_spread(self._model, row[None])
        return float(mean[0]), float(spread[0])

    def decide(self, expr: Expr) -> ScreenDecision:
        """Return whether to train `expr`."""
        predicted = self._predict(expr)
        if predicted is None:
            return ScreenDecision(True, None, "surrogate not fitted yet")
        mean, spread = predicted
        bound = mean + self.kappa * spread
        said = f"predicted {mean:.4f}" + (f" + {self.kappa:g} x spread {spread:.4f}" if self.kappa else "")
        threshold = float(np.quantile(self._y, self.skip_quantile))
        if bound >= threshold:
            return ScreenDecision(True, mean, f"{said} >= {threshold:.4f}")
        if self._rng.random() < self.explore:
            return ScreenDecision(True, mean, f"exploring: {said} < {threshold:.4f}")
        return ScreenDecision(False, mean, f"{said} < the run's {self.skip_quantile:.0%} quantile {threshold:.4f}")

    def _refit(self) -> None:
        # Refit after refit_every new rows, or a tenth more than it was fitted on: a forest on 10,000 rows takes
        # seconds, and one more row changes it little.
        stale = self._model is None or len(self._y) - self._fitted_on >= max(self.refit_every, self._fitted_on // 10)
        if len(self._y) < self.min_rows or not stale:
            return
        from sklearn.ensemble import RandomForestRegressor

        self._model = RandomForestRegressor(n_estimators=100, min_samples_leaf=2, n_jobs=1,
                                            random_state=self._seed).fit(np.stack(self._x), np.asarray(self._y))
        self._fitted_on = len(self._y)
