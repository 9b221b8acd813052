"""A peer library in a worker process under its own interpreter, driven one line at a time.

Peers (rejax, Stable-Baselines3) need environments Memorax's cannot share, so
each benchmark starts a worker script under the peer's interpreter and asks
it questions on stdin: ``run`` (answer: wall seconds of one timed training
call) and ``eval`` (answer: the last trained agent's mean return).
"""

from __future__ import annotations

import subprocess


class LineWorker:
    """A worker script answering one stdout line per stdin line; its first line is a greeting."""

    def __init__(self, python: str, script: str, *arguments: str) -> None:
        self.script = script
        self.process = subprocess.Popen(
            [python, script, *arguments], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.greeting = self._ask(None)

    def _ask(self, command: str | None) -> str:
        if self.process.stdin is None or self.process.stdout is None:
            raise RuntimeError(f"the worker {self.script}'s pipes are closed")
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker stopped; run {self.script} under its python to see why")
        return line.strip()

    def __call__(self) -> float:
        """Wall seconds of one timed training call (measured in the worker)."""
        return float(self._ask("run"))

    def mean_return(self) -> float:
        """Mean return of the worker's evaluation of its last trained agent."""
        return float(self._ask("eval"))

    def close(self) -> None:
        """Ends the worker."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()
