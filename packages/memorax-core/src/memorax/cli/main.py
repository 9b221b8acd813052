"""Entry point of the ``memorax`` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from memorax.cli.eval_command import add_eval_command
from memorax.cli.plot_command import add_plot_command
from memorax.cli.record_command import add_record_command
from memorax.cli.summary_command import add_summary_command
from memorax.cli.train_command import add_train_command

__all__ = ["CommandParser", "build_parser", "main"]


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are the error and one hint, not the usage
    block (``memorax train``'s usage alone is dozens of lines)."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` and where to find the options; exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists the options)\n")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The top-level parser with its ``train``, ``plot``, ``summary``, ``eval`` and
    ``record`` subcommands;
    ``argv`` picks the algorithm whose options ``memorax train --help`` shows."""
    parser = CommandParser(
        prog="memorax",
        description="Memory-augmented reinforcement learning in JAX.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_train_command(commands, shown_algo=_algo_in(argv))
    add_plot_command(commands)
    add_summary_command(commands)
    add_eval_command(commands)
    add_record_command(commands)
    return parser


def _algo_in(argv: Sequence[str]) -> str | None:
    """The ``--algo`` value in ``argv``, if any (read before parsing, for the help)."""
    for index, word in enumerate(argv):
        if word == "--algo" and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith("--algo="):
            return word.split("=", 1)[1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command in ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    options = parser.parse_args(argv)
    # Errors are reported against the subcommand's own parser (its usage line).
    return int(options.run(options, options.command_parser) or 0)
