"""`surrogate`: model-based search, a random forest over training-free features picks the next candidate.

After AQuaSurF (Bingham and Miikkulainen, 2023): each candidate is described without training by
`controller.surrogate.features` (its standardised values and slopes on a grid), a random forest (scikit-learn) is
fitted on the results told so far, and `ask` proposes, among a pool of candidates not asked yet, the one with the
best upper confidence bound: the forest's mean prediction plus `kappa` times the spread of its trees' predictions.

The pool is the whole space when it has at most `whole_space` token sequences (1 unit of the paper's operators:
6,250), one sequence per function; otherwise `pool` sequences drawn at random on each ask. The first `initial`
proposals, and an `explore` share of the later ones, are drawn at random over token sequences instead, as random
search does (a function with many spellings is drawn more often, which is why random meets relu-like functions
early). Candidates are told apart by their affine fingerprint: the features see the standardised function, so
functions equal up to an output scale and offset look the same to the forest, and one of them is proposed at most
once. A function whose features are None (not finite, or constant, after standardising) is never proposed.

Failures are told as `failure_score` (0, the worst validation accuracy), so the forest learns where training
diverges; a duplicate (a function evaluated before) is not learned from twice. The forest is refitted after every
result while few are in, then after every twentieth more, with a seed of its own, so `state_dict` keeps only the
told results, the keys asked and the random state, and a restore refits the same forest.
"""

from __future__ import annotations

import functools
import random
from typing import Any

import numpy as np

from controller.strategies.base import SearchExhausted, Strategy
from search_space import Space

__all__ = ["SurrogateSearch"]

_RANDOM_DRAWS = 200  # random draws tried for a proposal not asked yet before the forest's pool is used instead


@functools.lru_cache(maxsize=65536)
def _features(space: Space, tokens: tuple[int, ...]) -> np.ndarray | None:
    """Return the features of a token sequence, or None (cached, read only: a replay asks the same ones again)."""
    from controller.surrogate import features

    row = features(space.decode(list(tokens)))
    if row is not None:
        row.setflags(write=False)
    return row


@functools.lru_cache(maxsize=65536)
def _key(space: Space, tokens: tuple[int, ...]) -> str:
    """Return the affine fingerprint of a token sequence (cached)."""
    return space.decode(list(tokens)).fingerprint(affine=True)


@functools.lru_cache(maxsize=4)
def _whole_space(space: Space) -> tuple[list[tuple[int, ...]], list[str], np.ndarray]:
    """Return one token sequence per function of `space` (its first spelling) with keys and features, skipping
    functions without features."""
    import itertools

    seen: set[str] = set()
    spellings, keys, rows = [], [], []
    for tokens in itertools.product(*(range(size) for size in space.vocab_sizes())):
        key = _key(space, tokens)
        if key in seen:
            continue
        seen.add(key)
        row = _features(space, tokens)
        if row is not None:
            spellings.append(tokens)
            keys.append(key)
            rows.append(row)
    return spellings, keys, np.stack(rows)


class SurrogateSearch(Strategy):
    """A random forest over training-free features proposes the candidate with the best upper confidence bound.

    >>> from search_space import Space
    >>> strategy = SurrogateSearch(Space(units=1, ops="small"), seed=0, initial=2)
    >>> for _ in range(4):
    ...     proposal = strategy.ask()
    ...     strategy.tell(proposal.trial_id, "ok", 0.5 + 0.1 * proposal.tokens[1] / 11)
    """

    name = "surrogate"

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        initial: int = 6,  # random proposals before the forest is used
        explore: float = 0.1,  # share of later proposals drawn at random
        kappa: float = 1.0,  # weight of the trees' spread in the upper confidence bound
        pool: int = 200,  # candidates drawn per ask when the space is too big to score whole
        whole_space: int = 10_000,  # score every function when the space has at most this many sequences
        trees: int = 64,  # trees in the forest
        failure_score: float = 0.0,  # score the forest learns for a failed candidate
    ) -> None:
        super().__init__(space, seed)
        if initial < 1 or pool < 1 or trees < 1 or not 0.0 <= explore <= 1.0 or kappa < 0:
            raise ValueError(f"need initial >= 1, pool >= 1, trees >= 1, 0 <= explore <= 1 and kappa >= 0; got "
                             f"initial={initial}, pool={pool}, trees={trees}, explore={explore}, kappa={kappa}")
        self.initial, self.explore, self.kappa = initial, explore, kappa
        self.pool, self.trees, self.failure_score = pool, trees, failure_score
        self.whole_space = space.size() <= whole_space
        self._rng = random.Random(seed)
        self._asked: set[str] = set()  # affine fingerprints proposed or told
        self._told: list[list[Any]] = []  # [tokens, value the forest learns], news only
        self._forest = None
        self._fitted_on = 0
        self._ranked: list[int] | None = None  # whole space: indices by acquisition, best first, for this forest

    # ----- proposing -----
    def _propose(self, trial_id: int) -> list[int]:
        if len(self._told) < self.initial or self._rng.random() < self.explore:
            tokens = self._random_new()
            if tokens is not None:
                return self._take(tokens)
        self._refit()
        if self._forest is None:  # nothing scored yet (or nothing new found at random): any new candidate
            tokens = self._random_new() or self._best_of_pool(fitted=False)
        else:
            tokens = self._best_of_pool(fitted=True)
        return self._take(tokens)

    def _take(self, tokens: tuple[int, ...] | list[int]) -> list[int]:
        self._asked.add(_key(self.space, tuple(tokens)))
        return list(tokens)

    def _random_new(self) -> tuple[int, ...] | None:
        """Return a random token sequence of a function not asked yet and with features, or None after many draws."""
        for _ in range(_RANDOM_DRAWS):
            tokens = tuple(self.space.sample_tokens(self._rng))
            if _key(self.space, tokens) not in self._asked and _features(self.space, tokens) is not None:
                return tokens
        return None

    def _best_of_pool(self, fitted: bool) -> tuple[int, ...]:
        if self.whole_space:
            spellings, keys, rows = _whole_space(self.space)
            if self._ranked is None:
                order = np.argsort(-self._acquisition(rows), kind="stable") if fitted else np.arange(len(keys))
                self._ranked = [int(i) for i in order]
            for index in self._ranked:
                if keys[index] not in self._asked:
                    return spellings[index]
            raise SearchExhausted(f"every function of {self.space!r} with features has been proposed")
        draws = [tuple(self.space.sample_tokens(self._rng)) for _ in range(self.pool)]
        candidates = [(tokens, row) for tokens in draws if (row := _features(self.space, tokens)) is not None]
        if candidates and fitted:  # best first; fingerprints (the slower half) only until a new one is met
            values = self._acquisition(np.stack([row for _, row in candidates]))
            candidates = [candidates[i] for i in np.argsort(-values, kind="stable")]
        for tokens, _ in candidates:
            if _key(self.space, tokens) not in self._asked:
                return tokens
        raise SearchExhausted(f"{self.pool} draws from {self.space!r} found no function not proposed yet")

    def _acquisition(self, rows: np.ndarray) -> np.ndarray:
        """Return the forest's mean prediction plus `kappa` times its trees' spread, per row."""
        from controller.surrogate import tree_spread

        mean, spread = tree_spread(self._forest, rows)
        return mean + self.kappa * spread

    # ----- learning -----
    def _observe(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
        self._asked.add(_key(self.space, tuple(tokens)))
        if _features(self.space, tuple(tokens)) is not None:  # without features the forest could not use it
            self._told.append([list(tokens), float(score) if score is not None else self.failure_score])

    def _observe_duplicate(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
        self._asked.add(_key(self.space, tuple(tokens)))  # known already: not new data

    def _refit(self, upto: int | None = None) -> None:
        """Fit the forest on the first `upto` results, or on all when enough came in since the last fit."""
        if upto is None:
            due = max(1, self._fitted_on // 20)  # a forest on 600 results changes little with one more
            if not self._told or len(self._told) - self._fitted_on < due:
                return
            upto = len(self._told)
        if upto == 0:
            self._forest, self._fitted_on, self._ranked = None, 0, None
            return
        from sklearn.ensemble import RandomForestRegressor

        rows = np.stack([_features(self.space, tuple(tokens)) for tokens, _ in self._told[:upto]])
        values = np.array([value for _, value in self._told[:upto]])
        self._forest = RandomForestRegressor(n_estimators=self.trees, max_features=0.5, n_jobs=1,
                                             random_state=self.seed).fit(rows, values)
        self._fitted_on, self._ranked = upto, None

    # ----- checkpoint -----
    def _extra_state(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {"rng": [version, list(internal), gauss], "asked": sorted(self._asked),
                "told": [[list(tokens), value] for tokens, value in self._told], "fitted_on": self._fitted_on}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._asked = set(state["asked"])
        self._told = [[[int(t) for t in tokens], float(value)] for tokens, value in state["told"]]
        self._refit(upto=int(state["fitted_on"]))
