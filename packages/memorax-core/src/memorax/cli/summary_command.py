"""``memorax summary RUN_DIR [RUN_DIR ...]``: final scores of runs with confidence intervals."""

from __future__ import annotations

import argparse
from pathlib import Path

from memorax.plotting import final_scores
from memorax.statistics import aggregate

__all__ = ["add_summary_command", "summary_table"]


def add_summary_command(commands: argparse._SubParsersAction) -> None:
    """Registers ``summary`` on the ``memorax`` parser."""
    parser = commands.add_parser(
        "summary",
        help="print each run's final score over seeds with confidence intervals",
        description="For each run directory: every seed's final score (the mean of its "
        "last --tail share of logged points of --metric), and their interquartile mean, "
        "median and mean with 95%% stratified bootstrap confidence intervals "
        "(Agarwal et al. 2021).",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--metric", default="episode_return", help="metric to score (default: %(default)s)"
    )
    parser.add_argument(
        "--tail",
        type=float,
        default=0.1,
        help="share of each seed's last logged points averaged into its score "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--max-score",
        type=float,
        help="the best possible score (e.g. 500 for CartPole-v1): adds the optimality gap",
    )
    parser.set_defaults(run=run_summary, command_parser=parser)


def summary_table(
    run_dirs: list[Path], metric: str = "episode_return", tail: float = 0.1,
    max_score: float | None = None,
) -> str:  # fmt: skip
    """The summary of ``run_dirs`` as a Markdown table (one row per run)."""
    metrics = ["iqm", "run_median", "mean"]
    header = ["run", "seeds", "final scores", "IQM [95% CI]", "median [95% CI]", "mean [95% CI]"]
    if max_score is not None:
        metrics.append("optimality_gap")
        header.append(f"optimality gap to {max_score:g} [95% CI]")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run_dir in run_dirs:
        scores = final_scores(run_dir, metric, tail)
        try:
            result = aggregate(scores, metrics, gamma=max_score if max_score is not None else 1.0)
        except ValueError as error:
            raise ValueError(f"{run_dir}: {error}") from error
        cells = [
            run_dir.resolve().name or str(run_dir),
            str(len(scores)),
            ", ".join(f"{score:.4g}" for score in scores),
            *(f"{r.point:.4g} [{r.low:.4g}, {r.high:.4g}]" for r in result.values()),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_summary(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Prints the summary table of ``options.run_dirs``."""
    try:
        table = summary_table(options.run_dirs, options.metric, options.tail, options.max_score)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(f"final {options.metric}: mean of each seed's last {options.tail:g} of logged points")
    print(table)
    return 0
