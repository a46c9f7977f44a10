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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_space import ParseError, parse  # noqa: E402
from tests.search_space.strategies import mutated_expressions, random_text  # noqa: E402


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
