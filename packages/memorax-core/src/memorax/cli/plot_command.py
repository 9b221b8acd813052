"""``memorax plot RUN_DIR [RUN_DIR ...]``: compare learning curves, or final scores, of runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from memorax.cli.run_settings import EVALUATION_DIR, EVALUATION_METRIC
from memorax.plotting import plot_aggregate, plot_runs

__all__ = ["add_plot_command"]


def add_plot_command(commands: argparse._SubParsersAction) -> None:
    """Registers ``plot`` on the ``memorax`` parser."""
    parser = commands.add_parser(
        "plot",
        help="plot the learning curves of one or more runs",
        description="Plot a metric of one or more run directories against env steps, "
        "each run as its smoothed mean over seeds with a 95%% bootstrap confidence band "
        "and per-seed lines; with --aggregate, each run's final scores as IQM, median and "
        "mean with 95%% stratified bootstrap intervals.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--out",
        type=Path,
        help="image to write (default: comparison.png, or aggregate.png with --aggregate, "
        "in the first RUN_DIR)",
    )
    parser.add_argument(
        "--metric", default="episode_return", help="metric to plot (default: %(default)s)"
    )
    parser.add_argument(
        "--smoothing",
        type=int,
        help="average each curve over this many logged points (default: a twentieth of "
        "them; 1 draws the raw values)",
    )
    parser.add_argument(
        "--evaluation",
        action="store_true",
        help="draw the evaluation returns (the deterministic policy after every chunk, "
        "RUN_DIR/evaluation) instead of the training returns",
    )
    parser.add_argument(
        "--aggregate",
        action="store_true",
        help="draw each run's final scores (IQM, median, mean with 95%% intervals) instead "
        "of the curves",
    )
    parser.add_argument(
        "--tail",
        type=float,
        default=0.1,
        help="with --aggregate: share of each seed's last logged points averaged into its "
        "score (default: %(default)s)",
    )
    parser.set_defaults(run=run_plot, command_parser=parser)


def run_plot(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Draws the runs into ``options.out``."""
    default_name = "aggregate.png" if options.aggregate else "comparison.png"
    if options.evaluation:
        default_name = f"evaluation_{default_name}"
    out = options.out if options.out is not None else options.run_dirs[0] / default_name
    if options.evaluation:
        options.run_dirs = [run_dir / EVALUATION_DIR for run_dir in options.run_dirs]
        options.metric = EVALUATION_METRIC
    try:
        if options.aggregate:
            path = plot_aggregate(options.run_dirs, out, metric=options.metric, tail=options.tail)
        else:
            path = plot_runs(
                options.run_dirs, out, metric=options.metric, smoothing=options.smoothing
            )
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(f"wrote {path}")
    return 0
