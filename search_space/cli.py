"""`python -m search_space`: the size table, a look at one expression, and a listing of a space.

The command line owns the console: library modules never print. Bad input (a malformed expression, an unknown op
set) ends with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence

import torch

from search_space.counting import count_distinct, distinct_work, estimate_distinct
from search_space.graph import graph_stats
from search_space.operators import OP_SETS
from search_space.parser import ParseError, parse
from search_space.space import MAX_UNITS, Space

__all__ = ["main"]

EXACT_WORK_LIMIT = 2_000_000  # rows of batched evaluation; small/2 needs about 0.4 M, paper/2 about 500 M
SHOW_POINTS = (-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0)


def _distinct_cell(space: Space, exact: bool, samples: int, seed: int, affine: bool) -> tuple[str, str]:
    work = distinct_work(space)
    if work is not None and (work <= EXACT_WORK_LIMIT or exact):
        progress = None
        if work > EXACT_WORK_LIMIT:

            def progress(done: int, total: int) -> None:
                print(f"\r  counting {space!r}: {done}/{total} chunks", end="", file=sys.stderr, flush=True)

        count = count_distinct(space, progress, affine=affine)
        if progress is not None:
            print(file=sys.stderr)
        return f"{count:,}", "exact"
    if samples > 0:
        estimate = estimate_distinct(space, samples=samples, seed=seed, affine=affine)
        return (
            f">= {estimate.distinct_seen:,}",
            f"{estimate.samples:,} samples; Chao1 lower bound ~ {estimate.chao1:,.0f}",
        )
    hint = "--exact counts it (paper/2: 15-30 min)" if work is not None else "--samples N gives a lower bound"
    return "n/a (too large)", hint


def _sizes(args: argparse.Namespace) -> int:
    rows = [("ops", "units", "raw candidates", "distinct functions", "how")]
    for ops in args.ops:
        for units in args.units:
            space = Space(units=units, ops=ops)
            distinct, how = _distinct_cell(space, args.exact, args.samples, args.seed, args.affine)
            rows.append((ops, str(units), f"{space.size():,}", distinct, how))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) if i in (0, 4) else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print("\ndistinct = different fingerprints (values and slopes at 25 points in [-6, 6], at beta = 1 and 1.7)"
          + ("; up to a positive output scale and an offset, as standardised searches see them" if args.affine else ""))
    return 0


def _show(args: argparse.Namespace) -> int:
    expr = parse(args.expression)
    result = expr.screen()
    print(f"expression   {expr}")
    print(f"fingerprint  {expr.fingerprint()}")
    print(f"screen       {'ok' if result.ok else 'rejected: ' + result.reason}")
    print(f"parameters   {expr.num_params}")
    stats = graph_stats(expr.to_graph())
    ops = ", ".join(f"{name} x{count}" for name, count in stats["op_counts"].items()) or "none"
    print(f"tree         {expr.size} nodes, depth {expr.depth}")
    print(f"graph        {stats['nodes']} nodes, {stats['ops']} ops, longest path {stats['longest_path']}: {ops}")
    member = [f"{ops}/{units}" for ops in OP_SETS for units in (1, 2, 3) if expr in Space(units=units, ops=ops)]
    print(f"in spaces    {', '.join(member) or 'none of ' + ', '.join(OP_SETS) + ' with 1-3 units'}")
    module = expr.to_module().double()
    x = torch.tensor(SHOW_POINTS, dtype=torch.float64, requires_grad=True)
    y = module(x)
    (slopes,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    slopes = torch.zeros_like(x) if slopes is None else slopes
    print("\n       x        f(x)      f'(x)   (every beta = 1.0)")
    for point, value, slope in zip(SHOW_POINTS, y.tolist(), slopes.tolist(), strict=True):
        print(f"{point:8.2f} {value:11.5g} {slope:10.5g}")
    return 0


def _enumerate(args: argparse.Namespace) -> int:
    space = Space(units=args.units, ops=args.ops)
    seen: set[str] = set()
    printed = 0
    for tokens in itertools.product(*(range(size) for size in space.vocab_sizes())):  # the order of enumerate()
        expr = space.decode(tokens)
        if args.distinct:
            fingerprint = expr.fingerprint()
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
        if args.screened and not expr.screen().ok:
            continue
        print(f"{' '.join(map(str, tokens))}\t{expr}" if args.tokens else str(expr))
        printed += 1
        if args.limit is not None and printed >= args.limit:
            break
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m search_space", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    units = list(range(1, MAX_UNITS + 1))

    sizes = commands.add_parser("sizes", help="table of raw and distinct sizes per op set and number of units")
    sizes.add_argument("--ops", nargs="+", choices=list(OP_SETS), default=["small", "paper"])
    sizes.add_argument("--units", nargs="+", type=int, choices=units, default=[1, 2, 3])
    sizes.add_argument("--exact", action="store_true", help="count 2-unit spaces exactly even when slow (minutes)")
    sizes.add_argument("--samples", type=int, default=0, help="estimate the rest from this many uniform samples")
    sizes.add_argument("--seed", type=int, default=0, help="seed of the sampling estimate")
    sizes.add_argument("--affine", action="store_true", help="count functions equal up to a positive output scale "
                       "and an offset once (the search's view when outputs are standardised, the default)")
    sizes.set_defaults(run=_sizes)

    show = commands.add_parser("show", help="canonical form, fingerprint, screen verdict, values, graph of EXPR")
    show.add_argument("expression", help='an expression such as "x * sigmoid(beta * x)"')
    show.set_defaults(run=_show)

    listing = commands.add_parser("enumerate", help="list the candidates of a space in token order")
    listing.add_argument("--units", type=int, choices=units, default=1)
    listing.add_argument("--ops", choices=list(OP_SETS), default="small")
    listing.add_argument("--distinct", action="store_true", help="only the first candidate of each fingerprint")
    listing.add_argument("--screened", action="store_true", help="only candidates that pass the pre-screen")
    listing.add_argument("--tokens", action="store_true", help="print each candidate's tokens before it")
    listing.add_argument("--limit", type=int, default=None, help="stop after this many lines")
    listing.set_defaults(run=_enumerate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input)."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except ParseError as error:
        print(f"error: {error.one_line()}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head` closed the pipe: not an error
        sys.stderr.close()
        return 0
