"""ConsoleLogger prints one readable line per update and seed."""

from __future__ import annotations

import io
import math

import pytest

from memorax.logging import ConsoleLogger


def test_console_logger_prints_step_seed_and_chosen_metrics_in_order():
    stream = io.StringIO()
    logger = ConsoleLogger(stream, keys=("episode_return", "update"))
    logger.log(256, {"update": 2, "episode_return": 21.456789, "loss": 0.1}, seed=1)
    assert stream.getvalue() == "step 256 | seed 1 | episode_return 21.46 | update 2\n"


def test_console_logger_prints_missing_values_as_a_dash():
    stream = io.StringIO()
    ConsoleLogger(stream, keys=("episode_return", "absent")).log(1, {"episode_return": math.nan})
    assert stream.getvalue() == "step 1 | seed 0 | episode_return - | absent -\n"


def test_console_logger_every_n_counts_calls_per_seed():
    stream = io.StringIO()
    logger = ConsoleLogger(stream, keys=(), every=2)
    for step in (1, 2, 3):
        for seed in (0, 1):
            logger.log(step, {}, seed)
    lines = stream.getvalue().splitlines()
    assert lines == ["step 1 | seed 0", "step 1 | seed 1", "step 3 | seed 0", "step 3 | seed 1"]


def test_console_logger_refuses_logging_after_close():
    logger = ConsoleLogger(io.StringIO())
    logger.close()
    with pytest.raises(RuntimeError, match="after close"):
        logger.log(0, {})


def test_console_logger_rejects_a_non_positive_every():
    with pytest.raises(ValueError, match="every must be a positive integer"):
        ConsoleLogger(every=0)
