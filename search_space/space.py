"""`Space`: the candidates built from k core units `binary(unary(a), unary(b))`, as in Ramachandran et al. (2017).

Unit i's inputs are `x` or the output of an earlier unit; the last unit's output is the activation. A candidate is
a token sequence of five tokens per unit, `[input_a, unary_a, input_b, unary_b, binary]`, which is what the RL
controller samples, and decodes to an expression tree. An earlier unit used twice appears twice in the tree, and
each copy's anonymous betas are separate parameters.
"""

from __future__ import annotations

import itertools
import math
import operator
import random
from collections.abc import Iterator, Sequence

from search_space.encoding import plan_units
from search_space.expr import Expr, X
from search_space.operators import OpSet, op_set

__all__ = ["MAX_UNITS", "Space"]

MAX_UNITS = 6  # the paper uses 1 to 3; beyond 6 the tree sizes make little sense


class Space:
    """The search space of candidates with `units` core units over an op set (`paper`, `small`, names, OpSet).

    >>> import random
    >>> space = Space(units=1, ops="small")
    >>> space.size(), space.vocab_sizes()
    (144, [1, 6, 1, 6, 4])
    >>> swish = space.decode([0, 5, 0, 0, 3])
    >>> str(swish), space.encode(swish)
    ('sigmoid(beta * x) * x', [0, 5, 0, 0, 3])
    >>> space.sample(random.Random(0)) in set(space.enumerate())
    True
    """

    def __init__(self, units: int = 2, ops: str | Sequence[str] | OpSet = "paper") -> None:
        if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= MAX_UNITS:
            raise ValueError(f"units must be an int from 1 to {MAX_UNITS} (the paper uses 1 to 3), got {units!r}")
        self.units = units
        self.ops = op_set(ops)

    def __repr__(self) -> str:
        return f"Space(units={self.units}, ops={self.ops.name!r})"

    def size(self) -> int:
        """Return the number of token sequences: prod over units i of (i + 1)**2 * U**2 * B, i.e. (k!)^2 (U^2 B)^k."""
        unary, binary = len(self.ops.unary), len(self.ops.binary)
        return math.factorial(self.units) ** 2 * (unary * unary * binary) ** self.units

    def vocab_sizes(self) -> list[int]:
        """Return the vocabulary size of each token position (five per unit)."""
        unary, binary = len(self.ops.unary), len(self.ops.binary)
        return [size for i in range(self.units) for size in (i + 1, unary, i + 1, unary, binary)]

    def enumerate(self) -> Iterator[Expr]:
        """Yield every candidate lazily, in lexicographic order of token sequences (duplicates included)."""
        for tokens in itertools.product(*(range(size) for size in self.vocab_sizes())):
            yield self.decode(tokens)

    def sample_tokens(self, rng: random.Random) -> list[int]:
        """Return a token sequence drawn uniformly from the space."""
        if not isinstance(rng, random.Random):
            raise TypeError(f"rng must be a random.Random (e.g. random.Random(0)), got {type(rng).__name__}")
        return [rng.randrange(size) for size in self.vocab_sizes()]

    def sample(self, rng: random.Random) -> Expr:
        """Return a candidate drawn uniformly over token sequences."""
        return self.decode(self.sample_tokens(rng))

    def decode(self, tokens: Sequence[int]) -> Expr:
        """Return the expression of a token sequence; ValueError for a wrong length or a token out of range."""
        tokens = list(tokens)
        sizes = self.vocab_sizes()
        if len(tokens) != len(sizes):
            raise ValueError(f"{self!r} needs {len(sizes)} tokens (5 per unit), got {len(tokens)}")
        for position, (token, size) in enumerate(zip(tokens, sizes, strict=True)):
            try:
                token = operator.index(token)
            except TypeError:
                raise ValueError(f"token {position} must be an int, got {token!r}") from None
            if not 0 <= token < size:
                raise ValueError(f"token {position} is {token}, but position {position} takes 0 to {size - 1}")
            tokens[position] = token
        outputs: list[Expr] = [X]
        for unit in range(self.units):
            input_a, unary_a, input_b, unary_b, binary = tokens[5 * unit : 5 * unit + 5]
            a = self.ops.unary[unary_a](outputs[input_a])
            b = self.ops.unary[unary_b](outputs[input_b])
            outputs.append(self.ops.binary[binary](a, b))
        return outputs[-1]

    def encode(self, expr: Expr) -> list[int]:
        """Return the canonical token sequence of an expression of this space; ValueError when it is not in it.

        Several token sequences can decode to one tree; this returns the same one every time (see `encoding.py`).
        """
        plan = next(plan_units(expr, self.units, self.ops), None)
        if plan is None:
            raise ValueError(
                f"{str(expr)!r} is not a candidate of {self!r}: it is not binary(unary(a), unary(b)) over "
                f"x and earlier units with operators {', '.join(self.ops.names)}"
            )
        filler = self.units - len(plan)
        index = {tree: filler + i for i, (tree, _) in enumerate(plan)}
        tokens = [0] * (5 * filler)
        for _, (input_a, unary_a, input_b, unary_b, binary) in plan:
            ref_a = 0 if input_a == X else 1 + index[input_a]
            ref_b = 0 if input_b == X else 1 + index[input_b]
            tokens += [ref_a, unary_a, ref_b, unary_b, binary]
        return tokens

    def __contains__(self, expr: object) -> bool:
        return isinstance(expr, Expr) and next(plan_units(expr, self.units, self.ops), None) is not None
