"""memorax.statistics against rliable's numbers on a fixed score matrix."""

from __future__ import annotations

import numpy as np
import pytest

from memorax.statistics import METRICS, aggregate, performance_profile

SCORES = np.random.default_rng(0).uniform(size=(10, 5))  # 10 runs x 5 tasks
RESAMPLES = 20_000


@pytest.fixture(scope="module")
def rliable_estimates():
    from rliable import library, metrics

    def four(scores):
        return np.array([
            metrics.aggregate_iqm(scores),
            metrics.aggregate_median(scores),
            metrics.aggregate_mean(scores),
            metrics.aggregate_optimality_gap(scores),
        ])  # fmt: skip

    np.random.seed(0)  # rliable draws its resamples from numpy's global generator
    points, intervals = library.get_interval_estimates({"run": SCORES}, four, reps=RESAMPLES)
    return points["run"], intervals["run"]


def test_point_estimates_and_intervals_match_rliable(rliable_estimates):
    points, intervals = rliable_estimates
    ours = aggregate(SCORES, ("iqm", "median", "mean", "optimality_gap"), n_resamples=RESAMPLES)
    for index, (name, result) in enumerate(ours.items()):
        assert result.point == pytest.approx(points[index], abs=1e-12), name
        # Different random resamples: the percentile endpoints agree to bootstrap noise.
        assert result.low == pytest.approx(intervals[0, index], abs=0.01), name
        assert result.high == pytest.approx(intervals[1, index], abs=0.01), name
        assert result.low < result.point < result.high, name


def test_performance_profile_matches_rliable():
    from rliable import library

    taus = np.linspace(0.0, 1.0, 11)
    np.random.seed(0)
    profiles, intervals = library.create_performance_profile({"run": SCORES}, taus, reps=2_000)
    fraction, low, high = performance_profile(SCORES, taus)
    np.testing.assert_allclose(fraction, profiles["run"], atol=1e-12)
    np.testing.assert_allclose(low, intervals["run"][0], atol=0.05)
    np.testing.assert_allclose(high, intervals["run"][1], atol=0.05)
    assert np.all(low <= fraction) and np.all(fraction <= high)


def test_a_fixed_seed_gives_the_same_interval_and_another_seed_a_nearby_one():
    first = aggregate(SCORES, n_resamples=2_000, seed=3)
    assert aggregate(SCORES, n_resamples=2_000, seed=3) == first
    other = aggregate(SCORES, n_resamples=2_000, seed=4)
    assert other != first
    assert other["iqm"].low == pytest.approx(first["iqm"].low, abs=0.03)


def test_one_task_median_over_seeds_and_rliable_s_median_over_tasks():
    seeds = np.array([1.0, 2.0, 3.0, 10.0])
    result = aggregate(seeds, tuple(METRICS), gamma=5.0, n_resamples=1_000)
    assert result["run_median"].point == 2.5  # the median of the four seeds
    assert result["median"].point == 4.0  # one task: the median of one task mean
    assert result["mean"].point == 4.0
    assert result["iqm"].point == 2.5  # the middle two of four
    assert result["optimality_gap"].point == pytest.approx(5.0 - (1 + 2 + 3 + 5) / 4)


def test_identical_scores_give_a_zero_width_interval():
    result = aggregate(np.full((3, 2), 7.0), n_resamples=100)
    assert all(interval == (7.0, 7.0, 7.0) for interval in result.values())


@pytest.mark.parametrize(
    ("scores", "kwargs", "message"),
    [
        (np.ones((1, 3)), {}, "at least 2 runs per task"),
        (np.array([1.0, np.nan, 2.0]), {}, "must be finite"),
        (np.ones((2, 2, 2)), {}, r"must be \[runs\] or \[runs, tasks\]"),
        (np.ones((3, 2)), {"metrics": ("iqm", "mode")}, "unknown metrics \\['mode'\\]"),
        (np.ones((3, 2)), {"confidence": 95}, r"confidence must be in \(0, 1\)"),
    ],
)
def test_bad_input_is_a_clear_error(scores, kwargs, message):
    with pytest.raises(ValueError, match=message):
        aggregate(scores, **kwargs)
