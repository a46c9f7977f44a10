"""`tpe`: Optuna's TPE sampler over one categorical parameter per token position, through Optuna's ask/tell API.

Optuna is imported only when this strategy is chosen. The study lives in memory; `state_dict` keeps the told
history (one entry per trial, in ask order) and the samplers' random states as plain data, and `load_state_dict`
replays the history into a fresh study with `add_trial`, so a restored strategy continues the same sequence.
Failed candidates are told as `failure_value` (0, the worst validation accuracy) so TPE learns to avoid them;
their status is kept in the history.
"""

from __future__ import annotations

import logging
from typing import Any

from controller.strategies.base import Strategy
from search_space import Space

__all__ = ["TPEStrategy"]


class TPEStrategy(Strategy):
    """Tree-structured Parzen estimator (Optuna's `TPESampler`) over token positions.

    >>> from search_space import Space
    >>> strategy = TPEStrategy(Space(units=1, ops="small"), seed=0)
    >>> proposal = strategy.ask()
    >>> strategy.tell(proposal.trial_id, "error", None)
    """

    name = "tpe"

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        n_startup_trials: int = 10,  # random trials before TPE starts modelling
        multivariate: bool = True,  # model token positions jointly (they interact through the units)
        constant_liar: bool = True,  # treat in-flight trials as bad, so parallel workers do not pile up
        failure_value: float = 0.0,  # objective value told for a failed candidate
    ) -> None:
        super().__init__(space, seed)
        import optuna

        optuna.logging.set_verbosity(logging.WARNING)
        self._optuna = optuna
        self._sampler_options = {"n_startup_trials": n_startup_trials, "multivariate": multivariate,
                                 "constant_liar": constant_liar}
        self.failure_value = failure_value
        self._distributions = {
            f"t{i}": optuna.distributions.CategoricalDistribution(list(range(size)))
            for i, size in enumerate(self.vocab_sizes)
        }
        self._study = self._new_study()
        self._numbers: dict[int, int] = {}  # trial id -> optuna trial number
        self._history: list[list[Any]] = []  # [trial id, tokens, status or None while running, value]

    def _new_study(self) -> Any:
        optuna = self._optuna
        sampler = optuna.samplers.TPESampler(seed=self.seed, **self._sampler_options)
        return optuna.create_study(direction="maximize", sampler=sampler)

    def _propose(self, trial_id: int) -> list[int]:
        trial = self._study.ask(self._distributions)
        self._numbers[trial_id] = trial.number
        tokens = [int(trial.params[f"t{i}"]) for i in range(len(self.vocab_sizes))]
        self._history.append([trial_id, tokens, None, None])
        return tokens

    def _observe(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
        value = float(score) if score is not None else self.failure_value
        number = self._numbers.pop(trial_id, None)
        if number is None:  # not asked here: add it as a finished trial
            self._add_finished(tokens, value, status)
            self._history.append([trial_id, tokens, status, value])
            return
        self._study.tell(number, value)
        for entry in self._history:
            if entry[0] == trial_id and entry[2] is None:
                entry[2], entry[3] = status, value
                break

    def _add_finished(self, tokens: list[int], value: float, status: str) -> None:
        params = {f"t{i}": token for i, token in enumerate(tokens)}
        trial = self._optuna.trial.create_trial(
            params=params, distributions=self._distributions, value=value, user_attrs={"status": status}
        )
        self._study.add_trial(trial)

    def _sampler_rngs(self) -> list[Any]:
        """Return the numpy RandomStates of TPE and of its start-up random sampler (private in Optuna: when a
        release moves them, the state is saved without them and a restore replays the history only)."""
        sampler = self._study.sampler
        try:
            return [sampler._rng.rng, sampler._random_sampler._rng.rng]
        except AttributeError:
            return []

    def _extra_state(self) -> dict[str, Any]:
        rngs = []
        for rng in self._sampler_rngs():
            kind, keys, pos, has_gauss, cached = rng.get_state()
            rngs.append([kind, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)])
        return {"history": [list(entry) for entry in self._history], "rngs": rngs}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        import numpy as np

        optuna = self._optuna
        self._study = self._new_study()
        self._numbers = {}
        self._history = [list(entry) for entry in state["history"]]
        for number, (trial_id, tokens, status, value) in enumerate(self._history):
            if status is None:  # still in flight: a running trial that a later tell completes
                params = {f"t{i}": token for i, token in enumerate(tokens)}
                trial = optuna.trial.create_trial(
                    state=optuna.trial.TrialState.RUNNING, params=params, distributions=self._distributions
                )
                self._study.add_trial(trial)
                self._numbers[int(trial_id)] = number  # trials are added in history order
            else:
                self._add_finished(tokens, value, status)
        for rng, (kind, keys, pos, has_gauss, cached) in zip(self._sampler_rngs(), state["rngs"]):
            rng.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
