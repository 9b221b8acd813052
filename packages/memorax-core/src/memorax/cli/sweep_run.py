"""A ``memorax train --sweep`` run: every setting and seed in one program, results per setting.

The settings (every combination of the ``--sweep`` values) train with
``--seeds`` seeds each through :class:`memorax.algorithms.Sweep`, in the same
chunks and with the same keys as a plain run, so setting k gives what a
plain run with its values gives. The run directory holds ``run.json``,
``sweep.json`` (each setting's values and directory), ``setting-K/`` with
that setting's ``metrics.csv`` and learning curve, ``comparison.png`` (every
setting's curve) and, with two or more seeds, ``summary.md`` (final scores
with confidence intervals, as ``memorax summary`` prints them).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

from memorax.algorithms import Sweep
from memorax.cli.run_settings import RunSettings
from memorax.cli.summary_command import summary_table
from memorax.logging import CSVLogger, Progress
from memorax.plotting import plot_runs

__all__ = ["SUMMARY_FILE", "SWEEP_FILE", "train_sweep"]

SWEEP_FILE = "sweep.json"
SUMMARY_FILE = "summary.md"


def train_sweep(
    sweep: Sweep,
    settings: RunSettings,
    run_dir: Path,
    init_key: jax.Array,
    chunk_keys: list[jax.Array],
    chunk_steps: int,
    curve_file: str,
) -> int:
    """Trains ``sweep`` chunk by chunk into ``run_dir``; returns the exit status."""
    labels = [", ".join(f"{name}={value:g}" for name, value in s.items()) for s in sweep.settings]
    directories = [run_dir / f"setting-{k}" for k in range(sweep.num_settings)]
    record = [
        {"directory": directory.name, **setting}
        for directory, setting in zip(directories, sweep.settings, strict=True)
    ]
    (run_dir / SWEEP_FILE).write_text(json.dumps(record, indent=2))
    total_steps = len(chunk_keys) * chunk_steps
    print(
        f"sweeping {settings.algo} on {settings.env}: {sweep.num_settings} settings of "
        f"{', '.join(settings.sweep)} x {settings.seeds} seed(s) x {total_steps:,} env steps, "
        f"one program -> {run_dir}",
        flush=True,
    )
    print("compiling the training program (once per run)...", flush=True)
    loggers = [CSVLogger(directory) for directory in directories]
    progress = Progress(total_steps)
    states = sweep.init(init_key, settings.seeds)
    try:
        for key in chunk_keys:
            states = sweep.train(key, states, chunk_steps)
            metrics = {name: np.asarray(values) for name, values in states.metrics.items()}
            _log_chunk(loggers, metrics)
            returns = metrics["episode_return"][..., -1]
            latest = float(np.nanmean(returns)) if np.isfinite(returns).any() else None
            progress.update(
                int(np.max(metrics["env_steps"])),
                latest_return=latest,
                num_seeds=sweep.num_settings * settings.seeds,
            )
    finally:
        progress.close()
        for logger in loggers:
            logger.close()
    # A setting in which no episode ended has no curve (a short sweep); its run is fine.
    comparison: Any = "none (no episode ended during training; train for more steps)"
    for directory, label in zip(directories, labels, strict=True):
        with contextlib.suppress(ValueError):
            plot_runs([directory], directory / curve_file, title=f"{settings.algo}, {label}")
    with contextlib.suppress(ValueError):
        comparison = plot_runs(directories, run_dir / "comparison.png", labels=labels,
                               title=f"{settings.algo} on {settings.env}")  # fmt: skip
    for directory, label in zip(directories, labels, strict=True):
        print(f"{directory.name}: {label}", flush=True)
    if settings.seeds >= 2:
        try:
            table = summary_table(directories)
        except ValueError:
            print("no summary table: a setting had no episode end", flush=True)
        else:
            (run_dir / SUMMARY_FILE).write_text(table + "\n")
            print(table, flush=True)
    print(f"done; curves: {comparison}", flush=True)
    return 0


def _log_chunk(loggers: list[CSVLogger], metrics: dict[str, np.ndarray]) -> None:
    """One row per setting, seed and iteration of the chunk (``metrics``: ``[K, S, I]``)."""
    _, num_seeds, iterations = metrics["env_steps"].shape
    for setting, logger in enumerate(loggers):
        for iteration in range(iterations):
            for seed in range(num_seeds):
                row = {name: values[setting, seed, iteration].item()
                       for name, values in metrics.items()}  # fmt: skip
                logger.log(int(row["env_steps"]), row, seed)
