"""plot_runs draws learning curves from the files the file loggers wrote."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.image import imread

from memorax.logging import CSVLogger, JSONLLogger
from memorax.plotting import plot_runs


def write_run(run_dir, logger_cls, seeds, offset, steps=range(1000, 20001, 1000)):
    """A learning curve per seed, with NaN returns (no episode ended) at the start."""
    logger = logger_cls(run_dir)
    for step in steps:
        for seed in range(seeds):
            value = math.nan if step == 1000 else offset + 100 * (1 - math.exp(-step / 5000)) + seed
            logger.log(step, {"episode_return": value, "value_loss": 1.0 / step}, seed)
    logger.close()
    return run_dir


@pytest.fixture
def runs(tmp_path):
    return [
        write_run(tmp_path / "lstm", CSVLogger, seeds=3, offset=0.0),
        write_run(tmp_path / "gru", JSONLLogger, seeds=2, offset=30.0),
    ]


def test_plot_writes_a_readable_png_of_every_run(runs, tmp_path):
    out = plot_runs(runs, tmp_path / "plots" / "curve.png")
    image = imread(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.shape[0] > 300 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_plot_draws_per_seed_lines_mean_and_band(runs, tmp_path, monkeypatch):
    """Count what reaches matplotlib: 3 + 2 seed lines, 2 means, 2 bands."""
    from matplotlib.axes import Axes

    calls = {"plot": 0, "fill_between": 0}
    for name in calls:
        original = getattr(Axes, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Axes, name, counted)
    plot_runs(runs, tmp_path / "curve.png")
    assert calls == {"plot": 3 + 2 + 2, "fill_between": 2}


def test_mean_and_band_are_over_seeds_on_common_steps(tmp_path):
    from memorax.plotting import _aggregate

    seeds = {0: (np.array([0, 10, 20]), np.array([0.0, 1.0, 2.0])),
             1: (np.array([0, 20, 30]), np.array([2.0, 4.0, 9.0]))}  # fmt: skip
    grid, mean, low, high = _aggregate(seeds)
    np.testing.assert_array_equal(grid, [0, 10, 20])  # 30 is past seed 0's last step
    np.testing.assert_allclose(mean, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(low, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(high, [2.0, 3.0, 4.0])


def test_plot_of_another_metric_and_smoothing(runs, tmp_path):
    out = plot_runs(runs[:1], tmp_path / "loss.png", metric="value_loss", smoothing=3)
    assert out.stat().st_size > 1000


def test_plot_names_a_missing_metric_and_lists_the_available_ones(runs, tmp_path):
    with pytest.raises(ValueError, match=r"no metric 'return'; it has \['episode_return', "):
        plot_runs(runs, tmp_path / "x.png", metric="return")


def test_plot_refuses_a_run_without_any_finite_value(tmp_path):
    run = write_run(tmp_path / "short", CSVLogger, seeds=1, offset=0.0, steps=[1000])
    with pytest.raises(ValueError, match="no finite value of 'episode_return'"):
        plot_runs([run], tmp_path / "x.png")


def test_plot_names_a_directory_without_metrics(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"has no metrics\.csv or metrics\.jsonl"):
        plot_runs([tmp_path / "empty"], tmp_path / "x.png")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run_dirs": []}, "at least one run directory"),
        ({"labels": ["a", "b"]}, "got 2 labels for 1 runs"),
        ({"smoothing": 0}, "smoothing must be a positive integer"),
    ],
)
def test_plot_rejects_bad_arguments(runs, tmp_path, kwargs, message):
    arguments = {"run_dirs": runs[:1], "out_path": tmp_path / "x.png", **kwargs}
    with pytest.raises(ValueError, match=message):
        plot_runs(**arguments)


def test_band_is_a_bootstrap_interval_of_the_mean_inside_the_seeds_range():
    from memorax.plotting import _aggregate

    values = np.linspace(0.0, 9.0, 10)  # ten seeds, constant curves 0, 1, ..., 9
    seeds = {seed: (np.array([0, 10]), np.full(2, value)) for seed, value in enumerate(values)}
    _, mean, low, high = _aggregate(seeds)
    np.testing.assert_allclose(mean, [4.5, 4.5])
    # The mean of ten seeds is known far better than their range (0 to 9).
    assert np.all(low > 2.5) and np.all(high < 6.5)
    assert np.all(low < mean) and np.all(mean < high)


def test_curves_are_smoothed_over_a_twentieth_of_the_points_by_default(tmp_path):
    from memorax.plotting import _run_curves

    logger = CSVLogger(tmp_path / "zigzag")
    for step in range(1, 201):
        logger.log(step * 100, {"episode_return": 10.0 + (5.0 if step % 2 else -5.0)}, 0)
    logger.close()
    ((steps, raw),) = _run_curves(tmp_path / "zigzag", "episode_return", 1).values()
    ((smooth_steps, smooth),) = _run_curves(tmp_path / "zigzag", "episode_return", None).values()
    assert np.ptp(raw) == 10.0
    assert len(smooth) == 200 - 10 + 1  # a window of 200 / 20 points
    np.testing.assert_allclose(smooth, 10.0)  # an even window of a +-5 zigzag averages it out
    assert smooth_steps[0] == steps[9]


def test_final_scores_average_each_seed_s_last_tail_of_points(runs):
    from memorax.plotting import final_scores

    scores = final_scores(runs[0], tail=0.1)  # 19 finite points per seed: the last 2
    expected = [np.mean([100 * (1 - math.exp(-s / 5000)) + seed for s in (19000, 20000)])
                for seed in range(3)]  # fmt: skip
    np.testing.assert_allclose(scores, expected)
    with pytest.raises(ValueError, match=r"tail must be in \(0, 1\]"):
        final_scores(runs[0], tail=0.0)


def test_aggregate_plot_writes_an_image_and_names_a_run_with_one_seed(runs, tmp_path):
    from memorax.plotting import plot_aggregate

    out = plot_aggregate(runs, tmp_path / "aggregate.png")
    assert imread(out)[..., :3].std() > 0.05
    one_seed = write_run(tmp_path / "one", CSVLogger, seeds=1, offset=0.0)
    with pytest.raises(ValueError, match=r"one: aggregate: a confidence interval needs at least 2"):
        plot_aggregate([runs[0], one_seed], tmp_path / "x.png")


def test_summary_command_prints_each_run_s_scores_and_intervals(runs, capsys):
    from memorax.cli import main
    from memorax.plotting import final_scores
    from memorax.statistics import aggregate

    assert main(["summary", *map(str, runs), "--max-score", "120"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "final episode_return: mean of each seed's last 0.1 of logged points"
    assert "IQM [95% CI]" in lines[1] and "optimality gap to 120" in lines[1]
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[3:]}
    assert set(rows) == {"lstm", "gru"}
    expected = aggregate(final_scores(runs[1]), ("iqm", "run_median", "mean", "optimality_gap"),
                         gamma=120.0)  # fmt: skip
    iqm = expected["iqm"]
    assert f"{iqm.point:.4g} [{iqm.low:.4g}, {iqm.high:.4g}]" in rows["gru"]
    assert rows["gru"].split(" | ")[1] == "2"


def test_plot_command_draws_the_aggregate_and_refuses_a_one_seed_run(runs, tmp_path, capsys):
    from memorax.cli import main

    assert main(["plot", "--aggregate", *map(str, runs)]) == 0
    assert (runs[0] / "aggregate.png").exists()
    one_seed = write_run(tmp_path / "one", CSVLogger, seeds=1, offset=0.0)
    with pytest.raises(SystemExit):
        main(["plot", "--aggregate", str(one_seed)])
    assert "needs at least 2 runs per task" in capsys.readouterr().err
