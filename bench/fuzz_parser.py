"""Fuzz `search_space.parse`: the only outcomes allowed are an expression or a `ParseError`, never a hang.

Hypothesis generates inputs from two strategies, half each: random text (over the grammar's characters and over
all of Unicode) and mutated valid expressions (characters deleted, inserted or replaced, slices repeated, deep
nesting). Every input is parsed once; the run reports how many inputs gave an expression, a ParseError, or
anything else (a bug), and the slowest parse.

    python bench/fuzz_parser.py              # 100,000 inputs (about a minute or two on 2 cores)
    python bench/fuzz_parser.py --inputs 2000
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_space import ParseError, parse  # noqa: E402
from tests.search_space.strategies import expressions  # noqa: E402

GRAMMAR_CHARS = "x beta12 eps0.5e-+*/(),sigmoidtanhmaxabsexplogsqrtsinc_ \t\n"

random_text = st.one_of(st.text(alphabet=GRAMMAR_CHARS, max_size=400), st.text(max_size=200))


@st.composite
def mutated_expressions(draw: st.DrawFn) -> str:
    text = str(draw(expressions))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "repeat", "nest", "splice"]))
        i = draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:i] + text[i + 1 :]
        elif kind == "insert":
            text = text[:i] + draw(st.sampled_from(GRAMMAR_CHARS)) + text[i:]
        elif kind == "replace":
            text = text[:i] + draw(st.text(max_size=3)) + text[i + 1 :]
        elif kind == "repeat":
            text = text * draw(st.integers(2, 40))
        elif kind == "nest":
            depth = draw(st.integers(1, 2000))
            text = draw(st.sampled_from(["(", "-", "exp(", "-(" ])) * depth + text + ")" * depth
        else:
            j = draw(st.integers(0, len(text)))
            text = text[:i] + text[min(i, j) : max(i, j)] + text[i:]
    return text


def _check(text: str, tally: Counter, slowest: list[float], bugs: list[str]) -> None:
    start = time.perf_counter()
    try:
        parse(text)
        tally["expression"] += 1
    except ParseError:
        tally["ParseError"] += 1
    except Exception as error:  # the bug this benchmark hunts for
        tally["other exception"] += 1
        bugs.append(f"{type(error).__name__}: {error} for {text[:120]!r}")
    slowest[0] = max(slowest[0], time.perf_counter() - start)


def run(inputs: int) -> tuple[Counter, float, list[str]]:
    """Parse `inputs` generated texts; return the outcome counts, the slowest parse in seconds and the bugs."""
    tally: Counter = Counter()
    slowest = [0.0]
    bugs: list[str] = []
    config = settings(max_examples=inputs // 2, database=None, deadline=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
    for strategy in (random_text, mutated_expressions()):
        given(strategy)(config(lambda text: _check(text, tally, slowest, bugs)))()
    return tally, slowest[0], bugs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=100_000)
    args = parser.parse_args()
    start = time.perf_counter()
    tally, slowest, bugs = run(args.inputs)
    total = sum(tally.values())
    print(f"inputs: {total} in {time.perf_counter() - start:.1f} s")
    for outcome in ("expression", "ParseError", "other exception"):
        print(f"  {outcome}: {tally[outcome]}")
    print(f"slowest parse: {slowest * 1000:.2f} ms")
    for bug in bugs[:10]:
        print("BUG", bug)
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
