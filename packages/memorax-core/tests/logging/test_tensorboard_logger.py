"""TensorBoardLogger: one event-file folder per seed, read back from the event files."""

from __future__ import annotations

import math

import pytest
from tensorboardX.proto.event_pb2 import SessionLog

from memorax.logging import TensorBoardLogger

from .event_files import read_events, read_scalars


def test_each_seed_gets_its_own_run_with_every_finite_scalar(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    for step in (64, 128):
        for seed in (0, 1):
            ret = math.nan if step == 64 and seed == 1 else step / 64 + 10 * seed
            logger.log(step, {"episode_return": ret, "update": step // 64}, seed)
    logger.close()
    assert sorted(p.name for p in (tmp_path / "tensorboard").iterdir()) == ["seed_0", "seed_1"]
    seed_0 = read_scalars(tmp_path / "tensorboard" / "seed_0")
    seed_1 = read_scalars(tmp_path / "tensorboard" / "seed_1")
    assert seed_0["episode_return"] == [(64, 1.0), (128, 2.0)]
    assert seed_0["update"] == [(64, 1.0), (128, 2.0)]
    assert seed_1["episode_return"] == [(128, 12.0)]  # the NaN point is not written


def test_resume_marks_events_after_the_checkpoint_for_purging(tmp_path):
    logger = TensorBoardLogger(tmp_path, resume_step=200)
    logger.log(300, {"loss": 1.0})
    logger.close()
    events = read_events(tmp_path / "tensorboard" / "seed_0")
    starts = [e for e in events if e.session_log.status == SessionLog.START]
    assert [e.step for e in starts] == [201]


def test_logging_after_close_is_an_error(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    logger.close()
    with pytest.raises(RuntimeError, match="after close"):
        logger.log(1, {"a": 1.0})
