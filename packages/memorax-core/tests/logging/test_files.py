"""CSV and JSONL metric files: what is written is read back, one series per seed."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from memorax.logging import CSVLogger, JSONLLogger, read_metrics

LOGGERS = [CSVLogger, JSONLLogger]


def write_two_seeds(logger_cls, run_dir, steps=(100, 200, 300)):
    logger = logger_cls(run_dir)
    for update, step in enumerate(steps):
        for seed in (0, 1):
            logger.log(
                step,
                {
                    "episode_return": math.nan if update == 0 else 10.0 * update + seed,
                    "update": update + 1,
                },
                seed,
            )
    logger.close()


def test_csv_file_has_step_seed_and_sorted_metric_columns(tmp_path):
    write_two_seeds(CSVLogger, tmp_path)
    with (tmp_path / "metrics.csv").open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["step", "seed", "episode_return", "update"]
    assert rows[1] == ["100", "0", "", "1"]  # NaN is an empty cell
    assert rows[4] == ["200", "1", "11.0", "2"]
    assert len(rows) == 1 + 6


def test_jsonl_file_writes_one_object_per_row_and_nan_as_null(tmp_path):
    write_two_seeds(JSONLLogger, tmp_path)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"step": 100, "seed": 0, "episode_return": None, "update": 1}
    assert json.loads(lines[3]) == {"step": 200, "seed": 1, "episode_return": 11.0, "update": 2}


@pytest.mark.parametrize("logger_cls", LOGGERS)
def test_read_metrics_returns_one_series_per_seed(tmp_path, logger_cls):
    write_two_seeds(logger_cls, tmp_path)
    series = read_metrics(tmp_path)
    assert sorted(series) == [0, 1]
    np.testing.assert_array_equal(series[1]["step"], [100, 200, 300])
    np.testing.assert_array_equal(series[1]["episode_return"], [np.nan, 11.0, 21.0])
    np.testing.assert_array_equal(series[0]["update"], [1, 2, 3])


def test_csv_logger_refuses_a_metric_that_was_not_in_the_first_row(tmp_path):
    logger = CSVLogger(tmp_path)
    logger.log(1, {"a": 1.0})
    with pytest.raises(ValueError, match=r"metrics \['b'\] were not in the first logged row"):
        logger.log(2, {"a": 1.0, "b": 2.0})


def test_csv_logger_leaves_a_cell_empty_for_a_metric_left_out(tmp_path):
    logger = CSVLogger(tmp_path)
    logger.log(1, {"a": 1.0, "b": 2.0})
    logger.log(2, {"a": 3.0})
    logger.close()
    np.testing.assert_array_equal(read_metrics(tmp_path)[0]["b"], [2.0, np.nan])


def test_jsonl_logger_accepts_metrics_that_change_between_rows(tmp_path):
    logger = JSONLLogger(tmp_path)
    logger.log(1, {"a": 1.0})
    logger.log(2, {"b": 2.0})
    logger.close()
    series = read_metrics(tmp_path)[0]
    np.testing.assert_array_equal(series["a"], [1.0, np.nan])
    np.testing.assert_array_equal(series["b"], [np.nan, 2.0])


@pytest.mark.parametrize("logger_cls", LOGGERS)
def test_rows_are_on_disk_before_close(tmp_path, logger_cls):
    logger = logger_cls(tmp_path)
    logger.log(7, {"a": 1.0})
    assert read_metrics(tmp_path)[0]["a"].tolist() == [1.0]
    logger.close()


@pytest.mark.parametrize("logger_cls", LOGGERS)
def test_an_existing_file_is_never_overwritten_without_resume_step(tmp_path, logger_cls):
    write_two_seeds(logger_cls, tmp_path)
    with pytest.raises(FileExistsError, match="pass resume_step="):
        logger_cls(tmp_path)
    assert len(read_metrics(tmp_path)[0]["step"]) == 3


@pytest.mark.parametrize("logger_cls", LOGGERS)
def test_resuming_drops_rows_after_the_checkpoint_and_appends(tmp_path, logger_cls):
    write_two_seeds(logger_cls, tmp_path)  # the interrupted run logged up to 300
    logger = logger_cls(tmp_path, resume_step=200)  # its checkpoint was at 200
    for seed in (0, 1):
        logger.log(300, {"episode_return": 99.0 + seed, "update": 3}, seed)
    logger.close()
    series = read_metrics(tmp_path)
    np.testing.assert_array_equal(series[0]["step"], [100, 200, 300])
    np.testing.assert_array_equal(series[1]["episode_return"], [np.nan, 11.0, 100.0])


@pytest.mark.parametrize("logger_cls", LOGGERS)
def test_resuming_seeds_trained_one_after_another_keeps_the_finished_seeds(tmp_path, logger_cls):
    logger = logger_cls(tmp_path)
    for step in (100, 200, 300):  # seed 0 finished
        logger.log(step, {"update": step // 100}, 0)
    for step in (100, 200):  # seed 1 was interrupted after its checkpoint at 100
        logger.log(step, {"update": step // 100}, 1)
    logger.close()
    logger = logger_cls(tmp_path, resume_step=100, resume_seed=1)
    logger.log(200, {"update": 2}, 1)
    logger.close()
    series = read_metrics(tmp_path)
    np.testing.assert_array_equal(series[0]["step"], [100, 200, 300])
    np.testing.assert_array_equal(series[1]["step"], [100, 200])


@pytest.mark.parametrize("logger_cls", LOGGERS)
def test_logging_after_close_is_an_error(tmp_path, logger_cls):
    logger = logger_cls(tmp_path)
    logger.close()
    with pytest.raises(RuntimeError, match="after close"):
        logger.log(1, {"a": 1.0})


@pytest.mark.parametrize("logger_cls", LOGGERS)
def test_metric_names_step_and_seed_are_reserved(tmp_path, logger_cls):
    with pytest.raises(ValueError, match="written by the logger itself"):
        logger_cls(tmp_path).log(1, {"seed": 3})


def test_read_metrics_names_the_directory_without_metrics(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"has no metrics.csv or metrics.jsonl"):
        read_metrics(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        read_metrics(tmp_path / "missing")


def test_read_metrics_rejects_a_file_that_is_not_a_metrics_file(tmp_path):
    (tmp_path / "metrics.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a memorax metrics file"):
        read_metrics(tmp_path)
