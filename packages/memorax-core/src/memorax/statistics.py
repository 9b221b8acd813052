"""Aggregate scores over seeds and tasks with confidence intervals (Agarwal et al., 2021).

A handful of seeds makes a mean of noisy returns a poor summary. Following
"Deep Reinforcement Learning at the Edge of the Statistical Precipice"
(Agarwal et al., NeurIPS 2021, the ``rliable`` library), :func:`aggregate`
reports the interquartile mean (IQM), median, mean and optimality gap of a
``[runs, tasks]`` score matrix (rliable's definitions: IQM and optimality
gap over all run-task scores, median and mean over tasks of each task's mean
score; ``run_median`` is the median over all runs, for one task the median
over seeds), each with a stratified bootstrap confidence
interval: runs are resampled with replacement within each task, tasks are
kept. :func:`performance_profile` gives the fraction of runs above each
score threshold, with the same intervals.

The resampling is SciPy's (:func:`scipy.stats.bootstrap`, one sample per task,
percentile intervals as rliable computes them); the point estimates are the
definitions rliable uses, and the tests check both against rliable's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = [
    "METRICS",
    "Interval",
    "aggregate",
    "interquartile_mean",
    "optimality_gap",
    "performance_profile",
    "run_median",
    "task_mean",
    "task_median",
]


class Interval(NamedTuple):
    """A point estimate and its confidence interval."""

    point: float
    low: float
    high: float


def interquartile_mean(scores: np.ndarray) -> np.ndarray:
    """The mean of the middle 50% of all run-task scores (25% trimmed at each end).

    ``scores``: ``[..., runs, tasks]``; returns ``[...]``.
    """
    flat = scores.reshape(*scores.shape[:-2], -1)
    return stats.trim_mean(flat, proportiontocut=0.25, axis=-1)


def task_median(scores: np.ndarray) -> np.ndarray:
    """The median over tasks of each task's mean score (rliable's "median").

    With one task this is that task's mean; :func:`run_median` is the median
    over runs.
    """
    return np.median(np.mean(scores, axis=-2), axis=-1)


def run_median(scores: np.ndarray) -> np.ndarray:
    """The median of all run-task scores (for one task: the median over seeds)."""
    return np.median(scores.reshape(*scores.shape[:-2], -1), axis=-1)


def task_mean(scores: np.ndarray) -> np.ndarray:
    """The mean over tasks of each task's mean score."""
    return np.mean(np.mean(scores, axis=-2), axis=-1)


def optimality_gap(scores: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """How far the scores fall short of ``gamma`` on average (scores above it count as it)."""
    return gamma - np.mean(np.minimum(scores, gamma), axis=(-2, -1))


METRICS: dict[str, Callable[..., np.ndarray]] = {
    "iqm": interquartile_mean,
    "median": task_median,
    "run_median": run_median,
    "mean": task_mean,
    "optimality_gap": optimality_gap,
}
"""The aggregate metrics :func:`aggregate` knows, each ``f(scores [..., runs, tasks])``."""


def _score_matrix(scores: np.ndarray | Sequence, caller: str) -> np.ndarray:
    """``scores`` as a finite float ``[runs, tasks]`` matrix (a 1-D array is one task)."""
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError(
            f"{caller}: scores must be [runs] or [runs, tasks] with at least one value, "
            f"got shape {matrix.shape}."
        )
    if matrix.shape[0] < 2:
        raise ValueError(
            f"{caller}: a confidence interval needs at least 2 runs per task, got "
            f"{matrix.shape[0]}; train more seeds (memorax train --seeds N)."
        )
    if not np.all(np.isfinite(matrix)):
        raise ValueError(
            f"{caller}: scores must be finite; got {int(np.sum(~np.isfinite(matrix)))} NaN or "
            "infinite values (a seed whose episodes never ended has no return)."
        )
    return matrix


def _stratified_interval(
    matrix: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    confidence: float,
    n_resamples: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of ``statistic([runs, tasks] -> value(s))``, runs
    resampled within each task."""
    if np.all(matrix == matrix[0]):
        # Every resample is the same matrix; SciPy refuses a degenerate sample.
        point = np.asarray(statistic(matrix))
        return point, point

    def on_resamples(*tasks: np.ndarray, axis: int = -1) -> np.ndarray:
        # Each task arrives as [..., runs]; stack them back into [..., runs, tasks].
        resampled = np.stack(tasks, axis=-1)
        return statistic(resampled)

    result = stats.bootstrap(
        tuple(matrix.T),
        on_resamples,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


def aggregate(
    scores: np.ndarray | Sequence,
    metrics: Sequence[str] = ("iqm", "median", "mean"),
    *,
    gamma: float = 1.0,
    confidence: float = 0.95,
    n_resamples: int = 50_000,
    seed: int = 0,
) -> dict[str, Interval]:
    """Aggregate metrics of a score matrix with stratified bootstrap confidence intervals.

    Args:
        scores: ``[runs, tasks]`` (or ``[runs]`` for one task), e.g. the final
            return of each seed on each task; normalise scores first when tasks
            have different scales.
        metrics: names from :data:`METRICS`.
        gamma: the target of ``"optimality_gap"`` (1 for normalised scores).
        confidence: the interval's coverage.
        n_resamples: bootstrap resamples (rliable's default: 50,000).
        seed: seeds the resampling, so the same call gives the same interval.

    Returns:
        ``{metric: Interval(point, low, high)}``.
    """
    matrix = _score_matrix(scores, "aggregate")
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"aggregate: unknown metrics {unknown}; choose from {sorted(METRICS)}.")
    if not 0 < confidence < 1:
        raise ValueError(f"aggregate: confidence must be in (0, 1), got {confidence}.")
    results = {}
    for name in metrics:
        function = METRICS[name]
        kwargs = {"gamma": gamma} if name == "optimality_gap" else {}

        def statistic(resampled: np.ndarray, function=function, kwargs=kwargs) -> np.ndarray:
            return function(resampled, **kwargs)

        low, high = _stratified_interval(matrix, statistic, confidence, n_resamples, seed)
        results[name] = Interval(float(statistic(matrix)), float(low), float(high))
    return results


def performance_profile(
    scores: np.ndarray | Sequence,
    thresholds: np.ndarray | Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2_000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fraction of runs scoring above each threshold, with bootstrap intervals.

    Args:
        scores: ``[runs, tasks]`` or ``[runs]``.
        thresholds: the score thresholds ``tau``.
        confidence, n_resamples, seed: as in :func:`aggregate`.

    Returns:
        ``(fraction, low, high)``, each ``[len(thresholds)]``: the share of
        all run-task scores above ``tau`` (the mean over tasks of each task's
        share, tasks weighted equally as in rliable).
    """
    matrix = _score_matrix(scores, "performance_profile")
    taus = np.asarray(thresholds, dtype=np.float64).reshape(-1)

    def statistic(resampled: np.ndarray) -> np.ndarray:
        above = resampled[..., None] > taus  # [..., runs, tasks, thresholds]
        fraction = np.mean(np.mean(above, axis=-3), axis=-2)
        return np.moveaxis(fraction, -1, 0)  # SciPy wants the statistics first

    fraction = statistic(matrix)
    low, high = _stratified_interval(matrix, statistic, confidence, n_resamples, seed)
    return fraction, np.asarray(low), np.asarray(high)
