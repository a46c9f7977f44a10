"""The contract every search strategy honours, run over all rows of the STRATEGIES table (optuna-style).

The objective is a fixed score table over token sequences (a real, deterministic function of the candidate), so
strategies are exercised exactly as the run loop drives them, minus training.
"""

from __future__ import annotations

import io
import random

import pytest
import torch

from controller.strategies import STRATEGIES, SearchExhausted, Strategy, create_strategy
from search_space import Space

SPACE = Space(units=1, ops="small")
TWO_UNITS = Space(units=2, ops="small")


def score_of(tokens: list[int]) -> float | None:
    """A fixed score table: a hash-like function of the tokens in [0, 1); every 7th sequence 'fails'."""
    code = sum((i + 3) * (t + 1) ** 2 for i, t in enumerate(tokens))
    return None if code % 7 == 0 else (code * 0.6180339887) % 1.0


def drive(strategy: Strategy, n: int, in_flight: int = 3) -> list[list[int]]:
    """Ask/tell `n` candidates with up to `in_flight` pending, telling them out of order; return the tokens."""
    asked: list[list[int]] = []
    pending = []
    rng = random.Random(1)
    while len(asked) < n or pending:
        while len(asked) < n and len(pending) < in_flight:
            try:
                proposal = strategy.ask()
            except SearchExhausted:
                n = len(asked)
                break
            asked.append(proposal.tokens)
            pending.append(proposal)
        if not pending:
            break
        proposal = pending.pop(rng.randrange(len(pending)))
        score = score_of(proposal.tokens)
        strategy.tell(proposal.trial_id, "ok" if score is not None else "error", score)
    return asked


@pytest.fixture(params=sorted(STRATEGIES))
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def roundtrip(state: dict) -> dict:
    """Return `state` after torch.save and a weights_only load, as the run store does."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)


def test_candidates_are_valid(name: str) -> None:
    strategy = create_strategy(name, TWO_UNITS, seed=0)
    for _ in range(25):
        proposal = strategy.ask()
        assert len(proposal.tokens) == len(TWO_UNITS.vocab_sizes())
        assert all(0 <= t < size for t, size in zip(proposal.tokens, TWO_UNITS.vocab_sizes()))
        assert TWO_UNITS.decode(proposal.tokens) == proposal.expr
        score = score_of(proposal.tokens)
        strategy.tell(proposal.trial_id, "ok" if score is not None else "nan", score)


def test_failures_are_accepted(name: str) -> None:
    strategy = create_strategy(name, SPACE, seed=0)
    for status in ("nan", "diverged", "timeout", "error", "screened"):
        proposal = strategy.ask()
        strategy.tell(proposal.trial_id, status, None)
    for _ in range(20):  # keeps proposing after nothing but failures
        proposal = strategy.ask()
        strategy.tell(proposal.trial_id, "error", None)


def test_bad_tells_are_rejected(name: str) -> None:
    strategy = create_strategy(name, SPACE, seed=0)
    proposal = strategy.ask()
    with pytest.raises(ValueError, match="score"):
        strategy.tell(proposal.trial_id, "ok", None)
    with pytest.raises(ValueError, match="unknown status"):
        strategy.tell(proposal.trial_id, "great", 0.5)
    strategy.tell(proposal.trial_id, "ok", 0.5)
    with pytest.raises(ValueError, match="not in flight"):
        strategy.tell(proposal.trial_id, "ok", 0.5)


def test_same_seed_same_sequence(name: str) -> None:
    first = drive(create_strategy(name, TWO_UNITS, seed=3), 40)
    second = drive(create_strategy(name, TWO_UNITS, seed=3), 40)
    assert first == second


def test_save_restore_continues_the_same_sequence(name: str) -> None:
    original = create_strategy(name, TWO_UNITS, seed=5)
    drive(original, 30)
    in_flight = [original.ask() for _ in range(2)]  # a checkpoint taken while work is in flight
    state = roundtrip(original.state_dict())
    restored = create_strategy(name, TWO_UNITS, seed=5)
    restored.load_state_dict(state)
    assert restored.pending == original.pending
    for strategy in (original, restored):
        for proposal in in_flight:
            strategy.tell(proposal.trial_id, "ok", 0.5)
    assert drive(original, 25) == drive(restored, 25)


def test_add_evaluated_accepts_foreign_results(name: str) -> None:
    strategy = create_strategy(name, SPACE, seed=0)
    strategy.add_evaluated([0, 5, 0, 0, 3], "ok", 0.9, trial_id=41)
    strategy.add_evaluated([0, 1, 0, 1, 0], "error", None)
    assert strategy.ask().trial_id > 41  # never reuses a recorded trial id
    with pytest.raises(ValueError):
        strategy.add_evaluated([0, 99, 0, 0, 0], "ok", 0.1)


def test_checkpoint_of_another_strategy_is_refused(name: str) -> None:
    other = "random" if name != "random" else "exhaustive"
    state = create_strategy(other, SPACE, seed=0).state_dict()
    with pytest.raises(ValueError, match="checkpoint is for strategy"):
        create_strategy(name, SPACE, seed=0).load_state_dict(state)


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown strategy 'evolutoin'. Did you mean 'evolution'\?.*rl"):
        create_strategy("evolutoin", SPACE)


def test_exhaustive_covers_each_function_once() -> None:
    strategy = create_strategy("exhaustive", SPACE)
    proposals = drive(strategy, 10_000)
    fingerprints = [SPACE.decode(tokens).fingerprint() for tokens in proposals]
    assert len(set(fingerprints)) == len(fingerprints)
    assert set(fingerprints) == {expr.fingerprint() for expr in SPACE.enumerate()}
    with pytest.raises(SearchExhausted):
        strategy.ask()


def test_rl_learns_towards_high_reward() -> None:
    """With reward 1 for a unary token 0 in position 1 and 0 otherwise, the controller picks it more often (drawing
    its own choices: no redraw of sequences it tried, which in this 144-sequence space would soon be all)."""
    strategy = create_strategy("rl", SPACE, seed=0, lr=0.05, update_every=4, resample_seen=0)
    hits = []
    for _ in range(200):
        proposal = strategy.ask()
        hit = proposal.tokens[1] == 0
        hits.append(hit)
        strategy.tell(proposal.trial_id, "ok", 1.0 if hit else 0.0)
    assert sum(hits[:40]) < sum(hits[-40:])
    assert sum(hits[-40:]) > 20


@pytest.mark.parametrize("resample_seen", [0, 20])
def test_a_settled_rl_policy_still_proposes_sequences_it_has_not_tried(resample_seen: int) -> None:
    """Rewarded for one token, the policy settles on it; without redraws it repeats itself, with them (at rising
    temperatures) nearly every ask is a sequence not tried before."""
    strategy = create_strategy("rl", SPACE, seed=0, lr=0.05, update_every=4, resample_seen=resample_seen)
    asked = []
    for _ in range(120):
        proposal = strategy.ask()
        asked.append(tuple(proposal.tokens))
        strategy.tell(proposal.trial_id, "ok", 1.0 if proposal.tokens[1] == 0 else 0.0)
    assert (len(set(asked)) >= 115) if resample_seen else (len(set(asked)) < 40)


def test_rl_with_rank_rewards_learns_the_same_from_any_scale_of_scores() -> None:
    """reward="rank" learns from the order of results only: scores 0.9xx and their affine image propose alike."""
    def proposals(reward: str, transform) -> list[list[int]]:
        strategy = create_strategy("rl", SPACE, seed=0, lr=0.05, update_every=4, reward=reward)
        asked = []
        for _ in range(40):
            proposal = strategy.ask()
            asked.append(proposal.tokens)
            strategy.tell(proposal.trial_id, "ok", transform(0.9 + 0.01 * (sum(proposal.tokens) % 7)))
        return asked

    assert proposals("rank", lambda s: s) == proposals("rank", lambda s: 50 * s - 44)
    assert proposals("score", lambda s: s) != proposals("score", lambda s: 50 * s - 44)
    with pytest.raises(ValueError, match="reward must be"):
        create_strategy("rl", SPACE, reward="accuracy")


def _log_prob(strategy: Strategy, tokens: list[int]) -> float:
    with torch.no_grad():
        return float(strategy.policy.evaluate(torch.tensor([tokens]))[0][0])


@pytest.mark.parametrize("penalty", [None, 0.05])
def test_rl_learns_from_repeats_of_a_known_function_only_when_asked_to(penalty: float | None) -> None:
    """Told as news, a good function's repeats reinforce it (the policy collapses onto what it knows); told as
    repeats with a penalty, they push the policy away from it, towards functions it has not met."""
    strategy = create_strategy("rl", SPACE, seed=0, lr=0.05, update_every=4, duplicate_penalty=penalty)
    known = strategy.ask()
    strategy.tell(known.trial_id, "ok", 0.5)
    for _ in range(3):  # the baseline settles below the known function's score
        other = strategy.ask()
        strategy.tell(other.trial_id, "ok", 0.1)
    before = _log_prob(strategy, known.tokens)
    for _ in range(8):
        strategy.add_evaluated(known.tokens, "ok", 0.5, duplicate=True)
    after = _log_prob(strategy, known.tokens)
    assert (after > before) if penalty is None else (after < before)


def test_evolution_mutates_one_token() -> None:
    strategy = create_strategy("evolution", SPACE, seed=0, population=5, sample_size=2)
    drive(strategy, 5, in_flight=1)
    population = [tuple(tokens) for tokens, _ in strategy.state_dict()["extra"]["population"]]
    child = strategy.ask().tokens
    assert min(sum(a != b for a, b in zip(child, parent)) for parent in population) == 1


def test_exhaustive_scattered_order_visits_every_function_once_spread_over_the_space() -> None:
    from controller.strategies.exhaustive import Exhaustive

    space = Space(units=1, ops="small")

    def run(strategy) -> list[tuple[int, ...]]:
        seen = []
        while True:
            try:
                proposal = strategy.ask()
            except SearchExhausted:
                return seen
            seen.append(tuple(proposal.tokens))
            strategy.tell(proposal.trial_id, "ok", 0.5)

    plain, scattered = run(Exhaustive(space)), run(Exhaustive(space, order="scattered"))
    assert len(scattered) == len(plain) == 85
    assert {space.decode(list(t)).fingerprint() for t in scattered} == {space.decode(list(t)).fingerprint()
                                                                         for t in plain}
    assert len({t[1] for t in scattered[:10]}) >= 4  # the first ten already use most unary operators
    assert len({t[1] for t in plain[:10]}) == 1
    again = Exhaustive(space, order="scattered")
    again.load_state_dict(Exhaustive(space, order="scattered").state_dict())
    assert run(again) == scattered
