"""Turn Ctrl-C into a request to stop at the next safe point.

A jitted training call cannot be stopped halfway without losing its work,
so the first Ctrl-C (SIGINT) only sets a flag; the training loop checks it
between calls, writes a final checkpoint and the logs, and returns. A
second Ctrl-C raises ``KeyboardInterrupt`` as usual, for a user who does not
want to wait.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any, TextIO

__all__ = ["GracefulInterrupt"]


class GracefulInterrupt:
    """Context manager: while inside, the first signal sets ``requested`` instead of raising.

    Example::

        with GracefulInterrupt() as interrupt:
            for chunk in range(num_chunks):
                state = agent.train(keys[chunk], state, steps_per_chunk)
                checkpointer.save(step, state)
                if interrupt.requested:
                    break          # checkpoint and logs are written; exit cleanly

    Args:
        signals: the signals to catch (default SIGINT; add ``signal.SIGTERM`` for
            schedulers that send it before killing a job).
        stream: where the "stopping after this chunk" notice goes (default stderr).

    Must be entered on the main thread (Python delivers signals there).
    Previous handlers are restored on exit.
    """

    def __init__(self, signals: Sequence[int] = (signal.SIGINT,), stream: TextIO | None = None):
        self.signals = tuple(signals)
        self.stream = stream
        self.requested = False
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "GracefulInterrupt must be entered on the main thread: Python delivers "
                "signals only there."
            )
        self.requested = False
        self.signal = None
        for number in self.signals:
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signal = number
        stream = self.stream if self.stream is not None else sys.stderr
        print(
            f"\nReceived {signal.Signals(number).name}: stopping after the current training "
            "chunk and writing a final checkpoint. Send it again to abort at once.",
            file=stream,
            flush=True,
        )
