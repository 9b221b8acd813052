"""Turn Ctrl-C into a request to stop at the next safe point.

A jitted training call cannot be stopped halfway without losing its work,
so the first Ctrl-C (SIGINT) only sets a flag; the training loop checks it
between calls, writes a final checkpoint and the logs, and returns. A
second Ctrl-C raises ``KeyboardInterrupt`` as usual, for a user who does not
want to wait, or, with ``abort_on_second=True``, ends the process at once
(exit status 130, no traceback; the last checkpoint written stays).

Python runs signal handlers on the main thread, between bytecodes: while the
main thread is inside a long jitted call, a Ctrl-C is only acknowledged when
the call returns. ``memorax train`` therefore trains on a worker thread and
keeps the main thread waiting in short joins, so both Ctrl-Cs act at once.
"""

from __future__ import annotations

import os
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
        abort_on_second: a second signal ends the process at once with status
            130 (``os._exit``: no traceback, no cleanup) instead of raising
            ``KeyboardInterrupt``.

    Must be entered on the main thread (Python delivers signals there).
    Previous handlers are restored on exit.
    """

    def __init__(
        self,
        signals: Sequence[int] = (signal.SIGINT,),
        stream: TextIO | None = None,
        abort_on_second: bool = False,
    ):
        self.signals = tuple(signals)
        self.stream = stream
        self.abort_on_second = abort_on_second
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
        stream = self.stream if self.stream is not None else sys.stderr
        if self.requested:
            if not self.abort_on_second:
                raise KeyboardInterrupt
            print("\nAborted: the last checkpoint written is kept.", file=stream, flush=True)
            os._exit(130)
        self.requested = True
        self.signal = number
        print(
            f"\nReceived {signal.Signals(number).name}: stopping after the current training "
            "chunk and writing a final checkpoint. Send it again to abort at once.",
            file=stream,
            flush=True,
        )
