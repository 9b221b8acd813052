"""Learning curves and aggregate scores from the metrics files of run directories.

:func:`plot_runs` draws each run in its own colour: a thin line per seed, the
mean over seeds as a thick line and a shaded 95% bootstrap confidence
interval of that mean (seeds resampled with replacement). Curves are smoothed
by a moving average, by default over a twentieth of the logged points, so a
noisy run of a few seeds reads as a curve rather than a zigzag. The x axis
is env steps (the ``step`` column), the y axis a metric (default
``episode_return``). Seeds are compared on the union of their steps by
linear interpolation; the mean and band are drawn only where every seed of
the run has data, so a seed that stopped early does not make the mean jump.

:func:`plot_aggregate` draws, per run, the interquartile mean, median and
mean of its seeds' final scores with stratified bootstrap intervals
(:mod:`memorax.statistics`). Both use matplotlib's ``Figure`` directly (Agg
canvas), never pyplot, so they work without a display and leave global
state alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from memorax.logging.files import read_metrics
from memorax.statistics import aggregate

__all__ = ["final_scores", "plot_aggregate", "plot_runs"]

_CURVE_RESAMPLES = 2_000
_AUTO_SMOOTHING_POINTS = 20
# A run is one task: its seeds are the runs, and its median is the median over seeds.
_SEED_METRICS = ("iqm", "run_median", "mean")


def plot_runs(
    run_dirs: Sequence[str | os.PathLike],
    out_path: str | os.PathLike,
    metric: str = "episode_return",
    labels: Sequence[str] | None = None,
    title: str | None = None,
    smoothing: int | None = None,
) -> Path:
    """Draw ``metric`` against env steps for every run and save the figure.

    Args:
        run_dirs: run directories, each with a ``metrics.csv`` or ``metrics.jsonl``.
        out_path: the image to write (format from its suffix, e.g. ``.png``).
        metric: the column to plot.
        labels: one legend label per run (default: the directories' names).
        title: figure title (default: the metric's name).
        smoothing: average each seed's curve over this many consecutive
            logged points (1: raw values; ``None``: a twentieth of the points).

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
    if smoothing is not None and (not isinstance(smoothing, int) or smoothing < 1):
        raise ValueError(
            f"plot_runs: smoothing must be a positive integer or None, got {smoothing!r}."
        )
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
    run_dir: Path, metric: str, smoothing: int | None
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
        window = smoothing or max(1, len(values) // _AUTO_SMOOTHING_POINTS)
        if window > 1 and len(values) >= window:
            kernel = np.ones(window) / window
            values = np.convolve(values, kernel, mode="valid")
            steps = steps[window - 1 :]
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
    """Mean over seeds and its 95% bootstrap interval on the steps every seed covers."""
    start = max(steps[0] for steps, _ in seeds.values())
    stop = min(steps[-1] for steps, _ in seeds.values())
    grid = np.unique(np.concatenate([steps for steps, _ in seeds.values()]))
    grid = grid[(grid >= start) & (grid <= stop)]
    stacked = np.stack([np.interp(grid, steps, values) for steps, values in seeds.values()])
    mean = stacked.mean(axis=0)
    if len(stacked) < 2 or np.all(stacked == stacked[0]):
        return grid, mean, mean, mean
    interval = stats.bootstrap(
        (stacked,),
        np.mean,
        axis=0,
        n_resamples=_CURVE_RESAMPLES,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(0),
    ).confidence_interval
    # Grid points where every seed agrees have a zero-width interval (NaN from SciPy).
    low = np.where(np.isnan(interval.low), mean, interval.low)
    high = np.where(np.isnan(interval.high), mean, interval.high)
    return grid, mean, low, high


def final_scores(
    run_dir: str | os.PathLike, metric: str = "episode_return", tail: float = 0.1
) -> np.ndarray:
    """Each seed's final score: the mean of its last ``tail`` share of logged points.

    Args:
        run_dir: a run directory with a ``metrics.csv`` or ``metrics.jsonl``.
        metric: the column to score (NaN points, e.g. updates in which no
            episode ended, are skipped).
        tail: the share of each seed's finite points averaged, at least one point.

    Returns:
        ``[seeds]`` float64, in seed order.
    """
    if not 0 < tail <= 1:
        raise ValueError(f"final_scores: tail must be in (0, 1], got {tail}.")
    curves = _run_curves(Path(run_dir), metric, smoothing=1)
    scores = []
    for _, values in curves.values():
        count = max(1, round(tail * len(values)))
        scores.append(float(np.mean(values[-count:])))
    return np.asarray(scores)


def plot_aggregate(
    run_dirs: Sequence[str | os.PathLike],
    out_path: str | os.PathLike,
    metric: str = "episode_return",
    labels: Sequence[str] | None = None,
    tail: float = 0.1,
    title: str | None = None,
) -> Path:
    """Draw each run's IQM, median and mean of final scores with 95% intervals and save it.

    Args:
        run_dirs: run directories (each needs at least 2 seeds with a finite score).
        out_path: the image to write.
        metric, tail: what a seed's final score is (see :func:`final_scores`).
        labels: one label per run (default: the directories' names).
        title: figure title (default: the metric's name).

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.
    """
    from matplotlib.figure import Figure

    paths = [Path(run_dir) for run_dir in run_dirs]
    if not paths:
        raise ValueError("plot_aggregate: pass at least one run directory.")
    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"plot_aggregate: got {len(labels)} labels for {len(paths)} runs.")
    names = list(labels) if labels is not None else [p.resolve().name or str(p) for p in paths]
    results = []
    for path in paths:
        try:
            results.append(aggregate(final_scores(path, metric, tail), _SEED_METRICS))
        except ValueError as error:
            raise ValueError(f"plot_aggregate: {path}: {error}") from error
    metrics = _SEED_METRICS
    figure = Figure(figsize=(3.2 * len(metrics), 0.6 * len(paths) + 1.6), dpi=120,
                    layout="constrained")  # fmt: skip
    for column, name in enumerate(metrics):
        axes = figure.add_subplot(1, len(metrics), column + 1)
        for row, result in enumerate(results):
            interval = result[name]
            axes.barh(row, interval.high - interval.low, left=interval.low, height=0.6,
                      color=f"C{row % 10}", alpha=0.6)  # fmt: skip
            axes.plot([interval.point] * 2, [row - 0.3, row + 0.3], color="black", linewidth=2)
        axes.set_yticks(range(len(paths)), names if column == 0 else [""] * len(paths))
        axes.set_title({"iqm": "IQM", "run_median": "median"}.get(name, name))
        axes.grid(axis="x", alpha=0.3)
    figure.suptitle(title if title is not None else f"final {metric.replace('_', ' ')} "
                    "(95% stratified bootstrap intervals)")  # fmt: skip
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path)
    return out_path
