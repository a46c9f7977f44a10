"""`python -m controller.validate`: do the winners of a search beat the standard activations on larger models?

Trains every (function, model, seed) of a grid as a Ray Tune trial, records each result in a SQLite validation
store (so `--resume` runs only what is missing), then prints and writes the report: accuracy per model, paired
differences to ReLU with p-values, the wins table, reproducibility and dead-neuron rate, and how well the search
proxy predicted the larger models. From a tabular benchmark (`--from-table`), it validates the table's top
functions and a seeded random draw of the rest, and the report compares the table's proxy with the larger models over
the subset and each stratum, and lists the proxy's top 10 as the larger models rank them.

    python -m controller.validate --from-run demo --top 3 --models resnet8_1d resnet20_1d --seeds 3
    python -m controller.validate --from-table results/tables/small-1unit.csv.gz --top 5 --random 5 --baselines relu
    python -m controller.validate --expressions "x * sigmoid(beta * x)" --baselines relu gelu --steps 500
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from pathlib import Path

from controller.cluster import ClusterError
from controller.validation.run_source import RunSourceError, top_expressions
from controller.validation.store import StoreError, ValidationStore
from controller.validation.table_source import table_subset

DEFAULT_BASELINES = ["relu", "leaky_relu", "prelu", "softplus", "elu", "selu", "gelu", "swish", "mish", "smelu"]
DEFAULT_MODELS = ["resnet8_1d", "resnet20_1d"]
REPORT_DIR = Path("results/validation")


def _parser() -> argparse.ArgumentParser:
    from evaluator import MODELS, TASKS
    from evaluator.recipe import add_recipe_arguments

    parser = argparse.ArgumentParser(
        prog="python -m controller.validate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_argument_group("what to validate")
    source.add_argument("--from-run", metavar="RUN", help="a search run's name or the path of its run.sqlite")
    source.add_argument("--from-table", metavar="PATH", type=Path,
                        help="a tabular benchmark (.csv.gz from python -m controller.tabular export)")
    source.add_argument("--top", type=int, default=3,
                        help="how many of the run's or table's best functions (default 3)")
    source.add_argument("--random", type=int, default=0, metavar="N",
                        help="with --from-table: how many further ok functions to draw at random (default 0)")
    source.add_argument("--subset-seed", type=int, default=0, metavar="S",
                        help="with --from-table: the seed of the random draw (default 0)")
    source.add_argument("--expressions", nargs="+", default=[], metavar="EXPR", help="expressions or known names")
    source.add_argument("--baselines", nargs="*", default=DEFAULT_BASELINES, help="known activations to compare to")
    setup = parser.add_argument_group("how")
    setup.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=sorted(MODELS), metavar="MODEL")
    setup.add_argument("--task", default="mnist1d", choices=sorted(TASKS))
    setup.add_argument("--data-dir", help="folder holding CIFAR data (cifar10/cifar100)")
    setup.add_argument("--task-size", type=int, help="number of generated examples (mnist1d)")
    setup.add_argument("--seeds", type=int, default=5, help="trainings per function and model (default 5)")
    setup.add_argument("--steps", type=int, default=2000, help="optimizer steps per training (default 2000)")
    setup.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_recipe_arguments(parser)
    cluster = parser.add_argument_group("where")
    cluster.add_argument("--address", help="join this Ray cluster (e.g. auto or 10.0.0.1:6379); default: local")
    cluster.add_argument("--workers", type=int, help="local Ray CPUs (default: all cores)")
    cluster.add_argument("--dashboard", action="store_true",
                         help="start the local Ray's dashboard, bound to 127.0.0.1 (default: off)")
    cluster.add_argument("--cpus-per-trial", type=float, default=1.0)
    cluster.add_argument("--gpus-per-trial", type=float, default=0.0)
    output = parser.add_argument_group("records")
    output.add_argument("--name", help="validation name (default: the run's name, else 'validation')")
    output.add_argument("--out", type=Path, default=REPORT_DIR, help="report folder (default results/validation)")
    output.add_argument("--resume", action="store_true", help="continue a validation with the same name")
    return parser


def _machine() -> str:
    """Return the CPU model, core count, GPU if any, and torch version, for the report's header."""
    import os

    import torch

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{model}, {os.cpu_count()} cores{gpu}, torch {torch.__version__}"


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _table_name(path: Path) -> str:
    """Return the default validation name of a table: its file name without suffixes, plus `-validation`."""
    stem = path.name
    for suffix in (".gz", ".csv", ".parquet"):
        stem = stem.removesuffix(suffix)
    return f"{stem}-validation"


def _table_context(args: argparse.Namespace, header: dict[str, object]) -> str:
    """Return the report's line on where a table's subset came from."""
    size = f"{header.get('functions', '?')} of {header.get('functions_in_space', '?')} functions"
    return (f"{args.from_table} ({size}, proxy: {header.get('task', '?')}, {header.get('steps', '?')} steps, "
            f"{header.get('seeds', '?')} seeds): its top {args.top} by mean validation accuracy and "
            f"{args.random} drawn at random from its other ok functions (subset seed {args.subset_seed})")


def main(argv: list[str] | None = None) -> int:
    """Run the validation CLI; return the process exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    from controller.validation.session import run_validation

    store = None
    try:
        functions, search_scores, store_path, subset, source = [], {}, None, None, {}
        if args.from_run and args.from_table:
            _fail("--from-run and --from-table are two sources of functions; give one of them")
        if not args.from_table and (args.random or args.subset_seed):
            _fail("--random and --subset-seed draw from a table; add --from-table PATH")
        if args.from_run:
            run_functions, search_scores, store_path = top_expressions(args.from_run, args.top)
            functions += run_functions
        if args.from_table:
            subset, header = table_subset(args.from_table, args.top, args.random, args.subset_seed)
            functions += list(subset["function"])
            search_scores = dict(zip(subset["function"], subset["proxy_score"].astype(float), strict=True))
            source = {"source": _table_context(args, header)}
        functions += [e for e in args.expressions if e not in functions]
        if not functions and not args.baselines:
            _fail("nothing to validate: give --from-run RUN, --from-table PATH, --expressions EXPR ... or "
                  "--baselines NAME ...")
        default_name = _table_name(args.from_table) if args.from_table else "validation"
        name = args.name or (Path(store_path).parent.name if store_path else default_name)
        store_path = Path(store_path).parent / "validation.sqlite" if store_path else args.out / f"{name}.sqlite"
        existed = store_path.exists()
        store = ValidationStore(store_path, lease=True)  # refused while another validation writes this store
        if existed and not args.resume:
            _fail(f"{store_path} already holds a validation; add --resume to continue it or --name for a new one")
        context = {
            "command": "python -m controller.validate " + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": _machine(),
            **source,
        }
        run_validation(args, functions, search_scores, store, name, context, echo=print, subset=subset)
    except (ClusterError, RunSourceError, StoreError, ValueError) as error:
        _fail(str(error))
    except KeyboardInterrupt:
        print(f"\ninterrupted; resume with: python -m controller.validate {' '.join(sys.argv[1:])} --resume")
        return 130
    finally:
        if store is not None:
            store.close()  # gives the lease up
    return 0


if __name__ == "__main__":
    sys.exit(main())
