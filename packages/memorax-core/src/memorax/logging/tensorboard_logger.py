"""TensorBoard event files through tensorboardX, one TensorBoard run per seed.

Seed ``k`` writes to ``RUN_DIR/tensorboard/seed_k/``, so TensorBoard pointed at
``RUN_DIR/tensorboard`` (or at several run directories) shows each seed as
its own run with the same tags. tensorboardX is imported only when the
logger is created; it is the ``tensorboard`` extra of memorax-core (note that
tensorboardX imports PyTorch when it is installed, which can take seconds).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memorax.logging.logger import check_metrics, is_missing

__all__ = ["TENSORBOARD_DIR", "TensorBoardLogger"]

TENSORBOARD_DIR = "tensorboard"
"""Folder of a run directory that holds one event-file folder per seed."""


class TensorBoardLogger:
    """Writes each metric as a scalar tag, step = env steps; NaN values are skipped.

    Args:
        run_dir: the run directory; events go to ``run_dir/tensorboard/seed_<k>/``.
        resume_step: when continuing a run, events after this step that the
            interrupted run wrote are hidden by TensorBoard (``purge_step``).
        flush_secs: how often tensorboardX flushes pending events to disk;
            ``close`` writes everything still pending.
    """

    def __init__(
        self, run_dir: str | os.PathLike, resume_step: int | None = None, flush_secs: int = 30
    ):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as error:
            raise ImportError(
                'TensorBoardLogger needs tensorboardX: pip install "memorax-core[tensorboard]"'
            ) from error
        self._summary_writer = SummaryWriter
        self.directory = Path(run_dir) / TENSORBOARD_DIR
        self.resume_step = resume_step
        self.flush_secs = flush_secs
        self._writers: dict[int, Any] = {}
        self._closed = False

    def log(self, step: int, metrics: Mapping[str, Any], seed: int = 0) -> None:
        """Add every finite metric as a scalar of seed ``seed``'s run at ``step``."""
        step, values, seed = check_metrics("TensorBoardLogger", step, metrics, seed)
        if self._closed:
            raise RuntimeError("TensorBoardLogger: log() after close(); create a new logger.")
        writer = self._writers.get(seed)
        if writer is None:
            purge = None if self.resume_step is None else self.resume_step + 1
            writer = self._summary_writer(
                logdir=str(self.directory / f"seed_{seed}"),
                purge_step=purge,
                flush_secs=self.flush_secs,
            )
            self._writers[seed] = writer
        for name, value in values.items():
            if not is_missing(value):
                writer.add_scalar(name, value, global_step=step)

    def close(self) -> None:
        """Flush and close every seed's event file (idempotent)."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        self._closed = True
