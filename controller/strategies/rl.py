"""`rl`: the paper's controller, an LSTM that emits a candidate's tokens one by one, trained with PPO.

Ramachandran, Zoph and Le (2017) sample each token from a softmax over that position's vocabulary, feed the
sampled token back as the next input, and train the controller with PPO on the child network's validation
accuracy, minus an exponential moving average of past rewards as the baseline, with an entropy bonus.

Learning is asynchronous: every told result (reward, the sequence, and its log-probability under the policy that
sampled it) goes into a buffer, and after every `update_every` results the controller takes `epochs` PPO steps on
that buffer. Candidates asked before an update but told after it are still valid samples: the PPO ratio
`pi_new / pi_old` corrects for the policy having moved, and the clip keeps that correction bounded. Workers never
wait for a batch. Failures get reward `failure_reward` (0 by default, the worst validation accuracy).

On a real proxy the good functions' accuracies differ by a few thousandths while a failure costs the whole score, so
with `reward="score"` the policy mostly learns to avoid failures. `reward="rank"` rewards instead the share of
earlier results a result beats (failures lowest), which spreads the good ones over [0, 1] and makes learning
independent of the score's scale. Replayed on the tables it has shown no measurable gain yet (bench/RESULTS.md,
"Session 8"), so it is an option, not the default.

A policy that has learned concentrates on a few sequences it already knows. Left alone it re-proposes them, the
run loop answers with their recorded scores, which reinforces them further, until a thousand proposals in a row
bring nothing new and the run ends early. Two things keep it searching: `ask` draws again when the sequence was
asked or told before, in batches of `resample_seen` at rising temperatures (`EXPLORE_TEMPERATURES`), and a repeat
of a known function, which the loop tells as a duplicate, is learned from with advantage `-duplicate_penalty` (it
brought nothing new) instead of its score (bench/RESULTS.md, "Session 8").
"""

from __future__ import annotations

import bisect
from typing import Any

import torch
from torch import nn

from controller.strategies.base import Strategy
from search_space import Space

__all__ = ["EXPLORE_TEMPERATURES", "LSTMPolicy", "PPOController"]

# When a draw repeats a token sequence already tried, `resample_seen` more are drawn at each of these softmax
# temperatures in turn until one is new: a policy that has settled explores around what it prefers instead of
# stalling on repeats (PPO's ratio is taken against the distribution a sequence was actually drawn from).
EXPLORE_TEMPERATURES = (1.0, 2.0, 4.0, 8.0)


class LSTMPolicy(nn.Module):
    """An LSTM whose step i reads the embedding of token i-1 (a learned start vector at step 0) and outputs
    logits over position i's vocabulary."""

    def __init__(self, vocab_sizes: list[int], hidden: int = 100, layers: int = 1) -> None:
        super().__init__()
        self.vocab_sizes = list(vocab_sizes)
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embeddings = nn.ModuleList(nn.Embedding(size, hidden) for size in self.vocab_sizes[:-1])
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        self.heads = nn.ModuleList(nn.Linear(hidden, size) for size in self.vocab_sizes)

    def _inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """Return the LSTM inputs (B, T, hidden) for token sequences (B, T): start vector, then embeddings."""
        batch = tokens.shape[0]
        steps = [self.start.expand(batch, -1)]
        steps += [embed(tokens[:, i]) for i, embed in enumerate(self.embeddings)]
        return torch.stack(steps, dim=1)

    def evaluate(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (log-probability (B,), mean entropy per position (B,)) of token sequences (B, T)."""
        outputs, _ = self.lstm(self._inputs(tokens))  # (B, T, hidden)
        log_prob = torch.zeros(tokens.shape[0])
        entropy = torch.zeros(tokens.shape[0])
        for i, head in enumerate(self.heads):
            dist = torch.distributions.Categorical(logits=head(outputs[:, i]))
            log_prob = log_prob + dist.log_prob(tokens[:, i])
            entropy = entropy + dist.entropy()
        return log_prob, entropy / len(self.heads)

    @torch.no_grad()
    def sample(self, generator: torch.Generator, count: int = 1,
               temperature: float = 1.0) -> list[tuple[list[int], float]]:
        """Return `count` sequences (tokens, log-probability), sampled token by token, all in one batch, from the
        softmax of logits / `temperature` (the log-probability is under that distribution)."""
        state = None
        step_input = self.start.expand(count, -1).unsqueeze(1)  # (count, 1, hidden)
        tokens = torch.zeros(count, len(self.heads), dtype=torch.long)
        log_prob = torch.zeros(count, dtype=torch.float64)
        for i, head in enumerate(self.heads):
            output, state = self.lstm(step_input, state)
            probs = torch.softmax(head(output[:, -1]) / temperature, dim=-1)  # (count, vocab)
            chosen = torch.multinomial(probs, 1, generator=generator)  # (count, 1)
            tokens[:, i] = chosen[:, 0]
            log_prob += torch.log(probs.gather(1, chosen)[:, 0]).double()
            if i < len(self.embeddings):
                step_input = self.embeddings[i](chosen)  # (count, 1, hidden)
        return [(row, float(lp)) for row, lp in zip(tokens.tolist(), log_prob.tolist(), strict=True)]


class PPOController(Strategy):
    """The paper's LSTM controller trained with PPO (clipped objective), an EMA baseline and an entropy bonus.

    >>> from search_space import Space
    >>> strategy = PPOController(Space(units=1, ops="small"), seed=0, update_every=2)
    >>> for _ in range(4):
    ...     proposal = strategy.ask()
    ...     strategy.tell(proposal.trial_id, "ok", 0.5)
    >>> strategy.updates
    2
    """

    name = "rl"

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        hidden: int = 100,  # LSTM width (the paper's controller: one layer of 100 units)
        layers: int = 1,
        lr: float = 2e-3,  # Adam learning rate (5e-4 learned too slowly to beat random in replays, bench/RESULTS.md)
        baseline_decay: float = 0.95,  # EMA decay of the reward baseline
        clip: float = 0.2,  # PPO clipping range for the probability ratio
        entropy_weight: float = 1e-3,  # entropy bonus weight (1e-4 .. 1e-2 are sensible)
        update_every: int = 4,  # PPO update after this many told results
        epochs: int = 4,  # gradient steps per update on the buffered results
        failure_reward: float = 0.0,  # reward for a failed or screened candidate
        resample_seen: int = 20,  # draws per ask to find a token sequence not asked or told before (0: plain)
        reward: str = "score",  # "score": the validation accuracy; "rank": the share of earlier results below it
        duplicate_penalty: float | None = 0.05,  # minus the advantage of a known function re-proposed (None: its score)
    ) -> None:
        super().__init__(space, seed)
        if reward not in ("score", "rank"):
            raise ValueError(f"reward must be 'score' or 'rank', got {reward!r}")
        if update_every < 1 or epochs < 1 or resample_seen < 0:
            raise ValueError(f"update_every and epochs must be >= 1 and resample_seen >= 0, got {update_every}, "
                             f"{epochs} and {resample_seen}")
        self.options = {"clip": clip, "entropy_weight": entropy_weight, "baseline_decay": baseline_decay,
                        "update_every": update_every, "epochs": epochs, "failure_reward": failure_reward,
                        "resample_seen": resample_seen, "duplicate_penalty": duplicate_penalty,
                        "reward": reward}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.policy = LSTMPolicy(self.vocab_sizes, hidden, layers)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.baseline: float | None = None
        self.updates = 0
        self._log_probs: dict[int, float] = {}  # trial id -> log-probability when sampled
        self._buffer: list[tuple[list[int], float, float]] = []  # (tokens, old log-probability, advantage)
        self._scores: list[float] = []  # sorted rewards so far (reward="rank")
        self._seen: set[tuple[int, ...]] = set()  # token sequences asked or told (kept only with resample_seen)

    def _propose(self, trial_id: int) -> list[int]:
        [(tokens, log_prob)] = self.policy.sample(self.generator)
        draws = self.options["resample_seen"]
        for temperature in EXPLORE_TEMPERATURES if draws else ():  # a settled policy re-asks what it knows
            if tuple(tokens) not in self._seen:
                break
            batch = self.policy.sample(self.generator, draws, temperature)
            tokens, log_prob = next(((t, lp) for t, lp in batch if tuple(t) not in self._seen), batch[-1])
        if draws:
            self._seen.add(tuple(tokens))
        self._log_probs[trial_id] = log_prob
        return tokens

    def _observe(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
        if self.options["resample_seen"]:
            self._seen.add(tuple(tokens))
        reward = float(score) if score is not None else self.options["failure_reward"]
        if self.options["reward"] == "rank":  # the share of earlier results below this one: scale-free
            rank = bisect.bisect_left(self._scores, reward) / max(1, len(self._scores))
            bisect.insort(self._scores, reward)
            reward = rank
        old_log_prob = self._sampled_log_prob(trial_id, tokens)
        if self.baseline is None:
            self.baseline = reward
        advantage = reward - self.baseline
        decay = self.options["baseline_decay"]
        self.baseline = decay * self.baseline + (1 - decay) * reward
        self._learn(tokens, old_log_prob, advantage)

    def _observe_duplicate(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
        penalty = self.options["duplicate_penalty"]
        if penalty is None:  # the recorded score, as a new result: reinforces what the policy already knows
            self._observe(trial_id, tokens, status, score)
            return
        if self.options["resample_seen"]:
            self._seen.add(tuple(tokens))
        self._learn(tokens, self._sampled_log_prob(trial_id, tokens), -float(penalty))  # baseline: news only

    def _sampled_log_prob(self, trial_id: int, tokens: list[int]) -> float:
        """Return the log-probability `tokens` had when asked; for a result not sampled here (replayed), its
        probability under the current policy."""
        old_log_prob = self._log_probs.pop(trial_id, None)
        if old_log_prob is None:
            with torch.no_grad():
                old_log_prob = float(self.policy.evaluate(torch.tensor([tokens]))[0][0])
        return old_log_prob

    def _learn(self, tokens: list[int], old_log_prob: float, advantage: float) -> None:
        """Buffer one sample; a full buffer makes a PPO update."""
        self._buffer.append((tokens, old_log_prob, advantage))
        if len(self._buffer) >= self.options["update_every"]:
            self._update()

    def _update(self) -> None:
        tokens = torch.tensor([entry[0] for entry in self._buffer])  # (B, T)
        old_log_prob = torch.tensor([entry[1] for entry in self._buffer])  # (B,)
        advantage = torch.tensor([entry[2] for entry in self._buffer])  # (B,)
        clip = self.options["clip"]
        for _ in range(self.options["epochs"]):
            log_prob, entropy = self.policy.evaluate(tokens)
            ratio = torch.exp(log_prob - old_log_prob)
            surrogate = torch.minimum(ratio * advantage, torch.clamp(ratio, 1 - clip, 1 + clip) * advantage)
            loss = -(surrogate.mean() + self.options["entropy_weight"] * entropy.mean())
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self._buffer.clear()
        self.updates += 1

    def _extra_state(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "baseline": self.baseline,
            "updates": self.updates,
            "log_probs": [[trial_id, lp] for trial_id, lp in self._log_probs.items()],
            "buffer": [[tokens, lp, adv] for tokens, lp, adv in self._buffer],
            "seen": [list(tokens) for tokens in sorted(self._seen)],
            "scores": list(self._scores),
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.baseline = state["baseline"]
        self.updates = int(state["updates"])
        self._log_probs = {int(trial_id): float(lp) for trial_id, lp in state["log_probs"]}
        self._buffer = [(list(tokens), float(lp), float(adv)) for tokens, lp, adv in state["buffer"]]
        self._seen = {tuple(int(t) for t in tokens) for tokens in state.get("seen", [])}
        self._scores = [float(score) for score in state.get("scores", [])]
