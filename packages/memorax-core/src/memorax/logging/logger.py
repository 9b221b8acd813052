"""The logger protocol, fan-out to several loggers, and the two ways metrics reach them.

A logger receives one update's metrics for one seed at a time:
``logger.log(step, {"episode_return": 12.5, ...}, seed=0)``. Every logger keeps
one series per seed (a ``seed`` column, a TensorBoard run per seed, a W&B run
per seed). Metrics arrive either streamed during training through an
algorithm's ``metrics_callback`` (:func:`as_metrics_callback`) or, after a
``train`` call, from the per-update arrays in ``state.metrics``
(:func:`log_history`).

A metric value that is NaN (for example ``episode_return`` of an update in
which no episode ended) means "no value": each logger writes it as missing
rather than as a number.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Logger",
    "MultiLogger",
    "as_metrics_callback",
    "check_metrics",
    "is_missing",
    "log_history",
]


@runtime_checkable
class Logger(Protocol):
    """Anything with ``log`` and ``close``: what training code writes metrics to."""

    def log(self, step: int, metrics: Mapping[str, Any], seed: int = 0) -> None:
        """Record ``metrics`` (name -> scalar) of seed ``seed`` at ``step`` (env steps)."""

    def close(self) -> None:
        """Flush and release files; later ``log`` calls are errors."""


def check_metrics(
    owner: str, step: Any, metrics: Mapping[str, Any], seed: Any
) -> tuple[int, dict[str, float | int], int]:
    """Validate one ``log`` call and return ``(step, metrics, seed)`` as Python numbers.

    Integer-valued metrics (numpy / JAX integer or bool scalars, Python ints)
    stay ``int``; everything else becomes ``float`` (NaN included).

    Raises:
        TypeError: a value is not a scalar, or a name is not a string.
        ValueError: ``step`` or ``seed`` is not a non-negative integer.
    """
    step_value = _non_negative_int(owner, "step", step)
    seed_value = _non_negative_int(owner, "seed", seed)
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{owner}: metrics must be a dict of name -> scalar, got {type(metrics)}.")
    values: dict[str, float | int] = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"{owner}: metric names must be strings, got {name!r}.")
        array = np.asarray(value)
        if array.shape != ():
            raise TypeError(
                f"{owner}: metric {name!r} must be a scalar, got an array of shape "
                f"{array.shape}. Log one seed at a time, or pass per-update arrays to "
                "memorax.logging.log_history."
            )
        if array.dtype.kind in "iub":
            values[name] = int(array)
        elif array.dtype.kind == "f":
            values[name] = float(array)
        else:
            raise TypeError(
                f"{owner}: metric {name!r} must be a number, got {value!r} ({array.dtype})."
            )
    return step_value, values, seed_value


def is_missing(value: float | int) -> bool:
    """Whether a logged value means "no value" (NaN or infinite)."""
    return isinstance(value, float) and not math.isfinite(value)


class MultiLogger:
    """Sends every ``log`` call to each of ``loggers``; ``close`` closes them all.

    ``close`` closes every logger even if one of them fails, then re-raises the
    first failure.
    """

    def __init__(self, loggers: Sequence[Logger]):
        for logger in loggers:
            if not isinstance(logger, Logger):
                raise TypeError(
                    f"MultiLogger: {logger!r} is not a logger (it needs log(step, metrics, seed) "
                    "and close())."
                )
        self.loggers = tuple(loggers)

    def log(self, step: int, metrics: Mapping[str, Any], seed: int = 0) -> None:
        """Forward to every logger."""
        for logger in self.loggers:
            logger.log(step, metrics, seed)

    def close(self) -> None:
        """Close every logger; re-raise the first error after trying them all."""
        errors = []
        for logger in self.loggers:
            try:
                logger.close()
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]


def as_metrics_callback(
    logger: Logger, step_key: str = "env_steps"
) -> Callable[[dict[str, Any]], None]:
    """Adapt ``logger`` to an algorithm's ``metrics_callback``.

    The callback receives one update's metrics with a ``"seed"`` entry (the
    index along a ``jax.vmap`` over seeds) and calls
    ``logger.log(metrics[step_key], metrics_without_seed, seed)``. Calls are
    serialised with a lock because JAX may run host callbacks on its own
    threads.

    Example::

        logger = MultiLogger([CSVLogger(run_dir), progress])
        agent = PPO(..., metrics_callback=as_metrics_callback(logger))
    """
    if not isinstance(logger, Logger):
        raise TypeError(f"as_metrics_callback: {logger!r} is not a logger.")
    lock = threading.Lock()

    def callback(record: dict[str, Any]) -> None:
        if step_key not in record:
            raise KeyError(
                f"as_metrics_callback: the metrics have no {step_key!r} entry to use as the "
                f"step (they have {sorted(record)}); pass step_key=<one of them>."
            )
        metrics = {name: value for name, value in record.items() if name != "seed"}
        with lock:
            logger.log(record[step_key], metrics, record.get("seed", 0))

    return callback


def log_history(logger: Logger, metrics: Mapping[str, Any], step_key: str = "env_steps") -> None:
    """Log per-update metric arrays, one ``log`` call per update and seed.

    Args:
        logger: where to write.
        metrics: name -> ``[num_updates]`` array (one seed, logged as seed 0)
            or ``[num_seeds, num_updates]`` array (a ``jax.vmap`` over seeds),
            e.g. ``state.metrics`` after ``train``. All arrays share one shape.
        step_key: the metric used as the step of each update.

    Updates are logged in order, all seeds of an update before the next update.
    """
    if step_key not in metrics:
        raise KeyError(
            f"log_history: the metrics have no {step_key!r} entry to use as the step "
            f"(they have {sorted(metrics)}); pass step_key=<one of them>."
        )
    arrays = {name: np.asarray(value) for name, value in metrics.items()}
    shapes = {name: array.shape for name, array in arrays.items()}
    shape = shapes[step_key]
    if len(shape) not in (1, 2) or any(s != shape for s in shapes.values()):
        raise ValueError(
            "log_history: every metric must be a [num_updates] or [num_seeds, num_updates] "
            f"array of one common shape, got shapes {shapes}."
        )
    if len(shape) == 1:
        arrays = {name: array[None] for name, array in arrays.items()}
    num_seeds, num_updates = arrays[step_key].shape
    for update in range(num_updates):
        for seed in range(num_seeds):
            row = {name: array[seed, update] for name, array in arrays.items()}
            logger.log(int(row[step_key]), row, seed)


def _non_negative_int(owner: str, what: str, value: Any) -> int:
    array = np.asarray(value)
    if array.shape != () or array.dtype.kind not in "iu" or int(array) < 0:
        raise ValueError(f"{owner}: {what} must be a non-negative integer, got {value!r}.")
    return int(array)
