"""Learning curves from the metrics files of one or more run directories.

Each run is drawn in its own colour: a thin line per seed, the mean over
seeds as a thick line and the min-max range over seeds as a shaded band.
The x axis is env steps (the ``step`` column), the y axis a metric
(default ``episode_return``). Seeds are compared on the union of their
steps by linear interpolation; the mean and band are drawn only where
every seed of the run has data, so a seed that stopped early does not make
the mean jump. Uses matplotlib's ``Figure`` directly (Agg canvas), never
pyplot, so it works without a display and leaves global state alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from memorax.logging.files import read_metrics

__all__ = ["plot_runs"]


def plot_runs(
    run_dirs: Sequence[str | os.PathLike],
    out_path: str | os.PathLike,
    metric: str = "episode_return",
    labels: Sequence[str] | None = None,
    title: str | None = None,
    smoothing: int = 1,
) -> Path:
    """Draw ``metric`` against env steps for every run and save the figure.

    Args:
        run_dirs: run directories, each with a ``metrics.csv`` or ``metrics.jsonl``.
        out_path: the image to write (format from its suffix, e.g. ``.png``).
        metric: the column to plot.
        labels: one legend label per run (default: the directories' names).
        title: figure title (default: the metric's name).
        smoothing: average each seed's curve over this many consecutive
            logged points (1: raw values).

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: no run given, labels of the wrong length, the metric is
            missing from a run, or a run has no finite value of it.
        FileNotFoundError: a run directory has no metrics file.
    """
    from matplotlib.figure import Figure

    paths = [Path(run_dir) for run_dir in run_dirs]
    if not paths:
        raise ValueError("plot_runs: pass at least one run directory.")
    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"plot_runs: got {len(labels)} labels for {len(paths)} runs.")
    if not isinstance(smoothing, int) or smoothing < 1:
        raise ValueError(f"plot_runs: smoothing must be a positive integer, got {smoothing!r}.")
    curves = [_run_curves(path, metric, smoothing) for path in paths]

    figure = Figure(figsize=(7, 4.5), dpi=120, layout="constrained")
    axes = figure.add_subplot()
    for index, (run_dir, seeds) in enumerate(zip(paths, curves, strict=True)):
        color = f"C{index % 10}"
        label = labels[index] if labels is not None else (run_dir.resolve().name or str(run_dir))
        for steps, values in seeds.values():
            axes.plot(steps, values, color=color, linewidth=0.7, alpha=0.35)
        grid, mean, low, high = _aggregate(seeds)
        if len(seeds) > 1:
            axes.fill_between(grid, low, high, color=color, alpha=0.15, linewidth=0)
        axes.plot(grid, mean, color=color, linewidth=2.0,
                  label=f"{label} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})")  # fmt: skip
    axes.set_xlabel("env steps")
    axes.set_ylabel(metric.replace("_", " "))
    axes.set_title(title if title is not None else metric.replace("_", " "))
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path)
    return out_path


def _run_curves(
    run_dir: Path, metric: str, smoothing: int
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{seed: (steps, values)}`` with the missing points of each seed dropped."""
    series = read_metrics(run_dir)
    available = sorted({name for columns in series.values() for name in columns} - {"step"})
    if metric not in available:
        raise ValueError(f"plot_runs: {run_dir} has no metric {metric!r}; it has {available}.")
    curves = {}
    for seed, columns in series.items():
        keep = np.isfinite(columns[metric])
        steps, values = columns["step"][keep], columns[metric][keep]
        if smoothing > 1 and len(values) >= smoothing:
            kernel = np.ones(smoothing) / smoothing
            values = np.convolve(values, kernel, mode="valid")
            steps = steps[smoothing - 1 :]
        if len(values):
            curves[seed] = (steps, values)
    if not curves:
        raise ValueError(
            f"plot_runs: {run_dir} has no finite value of {metric!r} for any seed (for "
            "episode_return: no episode ended during the logged updates)."
        )
    return curves


def _aggregate(
    seeds: dict[int, tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over seeds on the steps that every seed covers."""
    start = max(steps[0] for steps, _ in seeds.values())
    stop = min(steps[-1] for steps, _ in seeds.values())
    grid = np.unique(np.concatenate([steps for steps, _ in seeds.values()]))
    grid = grid[(grid >= start) & (grid <= stop)]
    stacked = np.stack([np.interp(grid, steps, values) for steps, values in seeds.values()])
    return grid, stacked.mean(axis=0), stacked.min(axis=0), stacked.max(axis=0)
