"""The logger protocol helpers: input checks, fan-out, callback and history adapters."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from memorax.logging import Logger, MultiLogger, as_metrics_callback, log_history
from memorax.logging.logger import check_metrics


class Recorder:
    """A logger that keeps its calls (the thing under test is what calls it)."""

    def __init__(self, fail_on_close: bool = False):
        self.calls: list[tuple[int, dict, int]] = []
        self.closed = False
        self.fail_on_close = fail_on_close

    def log(self, step, metrics, seed=0):
        self.calls.append((step, dict(metrics), seed))

    def close(self):
        self.closed = True
        if self.fail_on_close:
            raise OSError("disk full")


def test_check_metrics_turns_array_scalars_into_python_numbers():
    step, values, seed = check_metrics(
        "X", np.int32(8), {"ret": jnp.float32(1.5), "count": jnp.int32(3), "ok": True}, 1
    )
    assert (step, seed) == (8, 1)
    assert values == {"ret": 1.5, "count": 3, "ok": 1}
    assert type(values["ret"]) is float and type(values["count"]) is int


@pytest.mark.parametrize(
    ("step", "metrics", "seed", "error", "message"),
    [
        (-1, {}, 0, ValueError, "step must be a non-negative integer"),
        (1.5, {}, 0, ValueError, "step must be a non-negative integer"),
        (0, {}, -2, ValueError, "seed must be a non-negative integer"),
        (0, {"ret": np.ones(3)}, 0, TypeError, r"'ret' must be a scalar.*log_history"),
        (0, {"name": "text"}, 0, TypeError, "'name' must be a number"),
        (0, {3: 1.0}, 0, TypeError, "names must be strings"),
        (0, [1.0], 0, TypeError, "dict of name -> scalar"),
    ],
)
def test_check_metrics_rejects_bad_input_with_a_clear_message(step, metrics, seed, error, message):
    with pytest.raises(error, match=message):
        check_metrics("X", step, metrics, seed)


def test_multilogger_forwards_every_call_to_every_logger():
    first, second = Recorder(), Recorder()
    logger = MultiLogger([first, second])
    logger.log(4, {"ret": 1.0}, seed=2)
    assert first.calls == second.calls == [(4, {"ret": 1.0}, 2)]
    assert isinstance(logger, Logger)


def test_multilogger_closes_every_logger_even_when_one_fails():
    failing, healthy = Recorder(fail_on_close=True), Recorder()
    with pytest.raises(OSError, match="disk full"):
        MultiLogger([failing, healthy]).close()
    assert failing.closed and healthy.closed


def test_multilogger_rejects_something_that_is_not_a_logger():
    with pytest.raises(TypeError, match="is not a logger"):
        MultiLogger([print])


def test_metrics_callback_uses_env_steps_as_step_and_the_seed_entry_as_seed():
    recorder = Recorder()
    callback = as_metrics_callback(recorder)
    callback({"env_steps": 128, "episode_return": 9.0, "seed": 3})
    assert recorder.calls == [(128, {"env_steps": 128, "episode_return": 9.0}, 3)]


def test_metrics_callback_names_the_missing_step_key():
    callback = as_metrics_callback(Recorder(), step_key="frames")
    with pytest.raises(KeyError, match=r"no 'frames' entry.*\['env_steps', 'seed'\]"):
        callback({"env_steps": 1, "seed": 0})


def test_log_history_fans_out_seed_by_update_arrays_in_update_order():
    recorder = Recorder()
    metrics = {
        "env_steps": np.array([[10, 20], [10, 20]]),
        "episode_return": np.array([[1.0, 2.0], [3.0, math.nan]]),
    }
    log_history(recorder, metrics)
    steps_and_seeds = [(step, seed) for step, _, seed in recorder.calls]
    assert steps_and_seeds == [(10, 0), (10, 1), (20, 0), (20, 1)]
    assert recorder.calls[1][1]["episode_return"] == 3.0
    assert math.isnan(recorder.calls[3][1]["episode_return"])


def test_log_history_logs_a_single_seed_as_seed_zero():
    recorder = Recorder()
    log_history(recorder, {"env_steps": jnp.array([5, 10]), "loss": jnp.array([0.5, 0.25])})
    assert [(s, m["loss"], k) for s, m, k in recorder.calls] == [(5, 0.5, 0), (10, 0.25, 0)]


def test_log_history_rejects_arrays_of_different_shapes():
    with pytest.raises(ValueError, match="one common shape"):
        log_history(Recorder(), {"env_steps": np.arange(3), "loss": np.zeros((2, 3))})


def test_log_history_names_the_missing_step_key():
    with pytest.raises(KeyError, match="no 'env_steps' entry"):
        log_history(Recorder(), {"loss": np.zeros(3)})
