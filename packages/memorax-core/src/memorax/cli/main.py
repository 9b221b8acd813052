"""Entry point of the ``memorax`` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from memorax.cli.plot_command import add_plot_command
from memorax.cli.train_command import add_train_command

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with its ``train`` and ``plot`` subcommands."""
    parser = argparse.ArgumentParser(
        prog="memorax",
        description="Memory-augmented reinforcement learning in JAX.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_train_command(commands)
    add_plot_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command in ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    options = parser.parse_args(argv)
    # Errors are reported against the subcommand's own parser (its usage line).
    return int(options.run(options, options.command_parser) or 0)
