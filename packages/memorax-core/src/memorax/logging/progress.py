"""A training progress display: live bar on a terminal, plain periodic lines elsewhere.

On a terminal (``stream.isatty()``) one line is redrawn in place::

    [####------]  41.0%  41,984/102,400 steps  8,120 steps/s  ETA 0:00:07  return 187.3

(with several seeds the return is followed by its spread: ``(seeds 120 to 250)``).

When the stream is not a terminal (CI logs, files) the same fields are
printed as ordinary lines, at most one every ``interval`` seconds, plus a
final line on ``close``. Steps per second count the env steps of every seed
(the throughput), measured from each seed's first report, so compilation
time before it does not distort them.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from memorax.logging.logger import check_metrics

__all__ = ["Progress"]

_BAR_WIDTH = 20


class Progress:
    """Shows env steps done out of ``total_steps``, steps/s, ETA and the latest mean return
    (with the lowest and highest seed's when there are several).

    Use it directly (``update``) or as a logger (``log``, e.g. inside a
    :class:`~memorax.logging.MultiLogger`), where it reads the step and the
    ``return_key`` metric of every seed.

    Args:
        total_steps: env steps per seed when training is done.
        stream: where to draw (default ``sys.stdout``).
        live: draw a live bar (default: ``stream.isatty()``).
        interval: seconds between plain lines when not live.
        initial_steps: steps already done before this display started (a resumed run).
        return_key: the metric shown as the latest mean return.
        clock: time source in seconds (for tests).
    """

    def __init__(
        self,
        total_steps: int,
        stream: TextIO | None = None,
        live: bool | None = None,
        interval: float = 10.0,
        initial_steps: int = 0,
        return_key: str = "episode_return",
        clock: Callable[[], float] = time.monotonic,
    ):
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"Progress: total_steps must be a positive integer, got "
                             f"{total_steps!r}.")  # fmt: skip
        if interval < 0:
            raise ValueError(f"Progress: interval must be >= 0 seconds, got {interval!r}.")
        self.total_steps = total_steps
        self.stream = stream if stream is not None else sys.stdout
        self.live = bool(self.stream.isatty()) if live is None else live
        self.interval = interval
        self.return_key = return_key
        self.clock = clock
        self.steps = initial_steps
        self._seed_steps: dict[int, int] = {}
        self._seed_returns: dict[int, float] = {}
        self._latest_return: float | None = None
        self._num_seeds = 1
        self._now = 0.0
        self._start_time: float | None = None
        self._baseline: dict[
            int, int
        ] = {}  # steps of each seed (or -1: update()) at its first report
        self._done: dict[int, int] = {}
        self._last_draw: float | None = None
        self._drawn_width = 0
        self._pending = False
        self._closed = False

    # ----------------------------------------------------------------- inputs

    def update(self, steps: int, latest_return: float | None = None, num_seeds: int = 1) -> None:
        """Report ``steps`` env steps done (per seed) and, if known, the latest mean return.

        ``num_seeds`` seeds trained in parallel multiply the steps/s shown.
        A ``latest_return`` of None or NaN keeps the previous one.
        """
        if self._closed:
            raise RuntimeError("Progress: update() after close().")
        if not isinstance(num_seeds, int) or num_seeds < 1:
            raise ValueError(f"Progress: num_seeds must be a positive integer, got {num_seeds!r}.")
        self.steps = int(steps)
        if latest_return is not None and math.isfinite(latest_return):
            self._latest_return = float(latest_return)
        self._num_seeds = num_seeds
        self._tick(-1, self.steps * num_seeds)

    def log(self, step: int, metrics: Mapping[str, Any], seed: int = 0) -> None:
        """Logger interface: track every seed's step and latest finite return."""
        step, values, seed = check_metrics("Progress", step, metrics, seed)
        if self._closed:
            raise RuntimeError("Progress: log() after close().")
        self._seed_steps[seed] = step
        value = values.get(self.return_key)
        if value is not None and math.isfinite(value):
            self._seed_returns[seed] = float(value)
        if self._seed_returns:
            self._latest_return = sum(self._seed_returns.values()) / len(self._seed_returns)
        self.steps = max(self._seed_steps.values())
        self._num_seeds = len(self._seed_steps)
        self._tick(seed, step)

    def close(self) -> None:
        """Draw the final state and end the line (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._pending or (self.live and self._drawn_width):
            self._draw()
        if self.live and self._drawn_width:
            self.stream.write("\n")
            self.stream.flush()

    # ----------------------------------------------------------------- display

    @property
    def steps_per_second(self) -> float | None:
        """Env steps per second over all seeds since the first report (None before two)."""
        return self._rate

    def line(self) -> str:
        """The text of the current state (without a bar when not live)."""
        fraction = min(self.steps / self.total_steps, 1.0)
        fields = [f"{fraction:6.1%}", f"{self.steps:,}/{self.total_steps:,} steps"]
        rate = self._rate
        fields.append("- steps/s" if rate is None else f"{rate:,.0f} steps/s")
        fields.append(f"ETA {self._eta(rate)}")
        ret = self._latest_return
        fields.append("return -" if ret is None else f"return {ret:.4g}")
        if len(self._seed_returns) > 1:
            # The mean hides a seed that collapsed: show the spread too.
            low, high = min(self._seed_returns.values()), max(self._seed_returns.values())
            fields[-1] += f" (seeds {low:.4g} to {high:.4g})"
        if not self.live:
            return " | ".join(fields)
        filled = round(fraction * _BAR_WIDTH)
        return f"[{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] " + "  ".join(fields)

    def _tick(self, seed: int, steps: int) -> None:
        now = self.clock()
        if self._start_time is None:
            self._start_time = now
        self._baseline.setdefault(seed, steps)
        self._done[seed] = steps
        self._now = now
        self._pending = True
        min_gap = 0.1 if self.live else self.interval
        if self._last_draw is None or now - self._last_draw >= min_gap:
            self._draw()

    @property
    def _rate(self) -> float | None:
        if self._start_time is None:
            return None
        elapsed = self._now - self._start_time
        done = sum(steps - self._baseline[seed] for seed, steps in self._done.items())
        return done / elapsed if elapsed > 0 and done > 0 else None

    def _eta(self, rate: float | None) -> str:
        if self.steps >= self.total_steps:
            return "0:00:00"
        if rate is None:
            return "-"
        seconds = round((self.total_steps - self.steps) * self._num_seeds / rate)
        hours, rest = divmod(seconds, 3600)
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"

    def _draw(self) -> None:
        text = self.line()
        if self.live:
            # Pad over the previous, possibly longer, line instead of relying on ANSI codes.
            padding = " " * max(self._drawn_width - len(text), 0)
            self.stream.write("\r" + text + padding)
            self._drawn_width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._last_draw = self._now if self._start_time is not None else self.clock()
        self._pending = False
