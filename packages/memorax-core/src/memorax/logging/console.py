"""Print metrics as plain text lines, one per update and seed."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from memorax.logging.logger import check_metrics, is_missing

__all__ = ["ConsoleLogger"]


class ConsoleLogger:
    """Prints ``step 4096 | seed 0 | episode_return 21.5 | ...`` lines.

    Args:
        stream: where to print (default ``sys.stdout`` at the time of each call).
        keys: the metrics to print, in this order (default: all, sorted by name).
            A missing or NaN value prints as ``-``.
        every: print only every ``every``-th call per seed (the first included).
    """

    def __init__(
        self, stream: TextIO | None = None, keys: Sequence[str] | None = None, every: int = 1
    ):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"ConsoleLogger: every must be a positive integer, got {every!r}.")
        self.stream = stream
        self.keys = tuple(keys) if keys is not None else None
        self.every = every
        self._calls: dict[int, int] = {}
        self._closed = False

    def log(self, step: int, metrics: Mapping[str, Any], seed: int = 0) -> None:
        """Print one line (subject to ``every``)."""
        step, values, seed = check_metrics("ConsoleLogger", step, metrics, seed)
        if self._closed:
            raise RuntimeError("ConsoleLogger: log() after close(); create a new logger.")
        count = self._calls.get(seed, 0)
        self._calls[seed] = count + 1
        if count % self.every:
            return
        keys = self.keys if self.keys is not None else sorted(values)
        fields = [f"step {step}", f"seed {seed}"]
        fields += [f"{key} {_format(values.get(key))}" for key in keys]
        stream = self.stream if self.stream is not None else sys.stdout
        print(" | ".join(fields), file=stream, flush=True)

    def close(self) -> None:
        """Stop accepting metrics (the stream is not closed: it is not ours)."""
        self._closed = True


def _format(value: float | int | None) -> str:
    if value is None or is_missing(value):
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"
