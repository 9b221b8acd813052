"""Training output: metric loggers (one series per seed) and a progress display.

Every logger has ``log(step, metrics, seed=0)`` and ``close()``; ``step`` is
env steps, ``metrics`` a dict of scalars for one seed, NaN means "no value".
Feed them from an algorithm's ``metrics_callback`` with
:func:`as_metrics_callback`, or after training from ``state.metrics`` with
:func:`log_history`. A run directory holds::

    RUN_DIR/metrics.csv  (CSVLogger)   RUN_DIR/metrics.jsonl  (JSONLLogger)
    RUN_DIR/tensorboard/seed_<k>/      (TensorBoardLogger, extra "tensorboard")
    RUN_DIR/wandb/                     (WandbLogger, extra "wandb")
"""

from memorax.logging.console import ConsoleLogger
from memorax.logging.files import CSV_FILE, JSONL_FILE, CSVLogger, JSONLLogger, read_metrics
from memorax.logging.logger import Logger, MultiLogger, as_metrics_callback, log_history
from memorax.logging.progress import Progress
from memorax.logging.tensorboard_logger import TENSORBOARD_DIR, TensorBoardLogger
from memorax.logging.wandb_logger import WandbLogger, default_wandb_mode

__all__ = [
    "CSV_FILE",
    "JSONL_FILE",
    "TENSORBOARD_DIR",
    "CSVLogger",
    "ConsoleLogger",
    "JSONLLogger",
    "Logger",
    "MultiLogger",
    "Progress",
    "TensorBoardLogger",
    "WandbLogger",
    "as_metrics_callback",
    "default_wandb_mode",
    "log_history",
    "read_metrics",
]
