"""``memorax plot RUN_DIR [RUN_DIR ...]``: compare learning curves of runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from memorax.plotting import plot_runs

__all__ = ["add_plot_command"]


def add_plot_command(commands: argparse._SubParsersAction) -> None:
    """Registers ``plot`` on the ``memorax`` parser."""
    parser = commands.add_parser(
        "plot",
        help="plot the learning curves of one or more runs",
        description="Plot a metric of one or more run directories against env steps, "
        "each run as its mean over seeds with the spread and per-seed lines.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--out",
        type=Path,
        help="image to write (default: comparison.png in the first RUN_DIR)",
    )
    parser.add_argument(
        "--metric", default="episode_return", help="metric to plot (default: %(default)s)"
    )
    parser.add_argument(
        "--smoothing",
        type=int,
        default=1,
        help="average each curve over this many logged points (default: %(default)s)",
    )
    parser.set_defaults(run=run_plot, command_parser=parser)


def run_plot(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Draws the runs into ``options.out``."""
    out = options.out if options.out is not None else options.run_dirs[0] / "comparison.png"
    try:
        path = plot_runs(options.run_dirs, out, metric=options.metric, smoothing=options.smoothing)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(f"wrote {path}")
    return 0
