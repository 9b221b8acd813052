"""``memorax record`` on an ALE run: the policy sees its trained observations, the
video shows the game's full colour screen."""

from __future__ import annotations

import imageio.v2 as imageio
import pytest

from memorax.cli import main
from memorax.cli.record_command import record_run

pytestmark = pytest.mark.slow


def test_record_plays_an_ale_run_and_writes_the_colour_screens(tmp_path):
    run, out = tmp_path / "pong", tmp_path / "pong.gif"
    tiny = [
        "--env", "ale::Pong", "--env-arg", "stack_num=2", "--seeds", "1",
        "--torso", "gru", "--hidden-size", "8", "--total-steps", "32",
        "--ppo.num-envs", "2", "--ppo.num-steps", "16", "--ppo.num-minibatches", "1",
    ]  # fmt: skip
    assert main(["train", *tiny, "--out", str(run)]) == 0
    result = record_run(run, out, max_steps=20, fps=25, memory_overlay=True)
    # A Pong point takes longer than 20 steps: the reset frame and one per step.
    assert result["frames"] == 21 and result["returns"] == [0.0]
    frames = imageio.mimread(out)
    # The 210 x 160 screen and the memory-norm strip under it.
    assert frames[0].shape == (250, 160, 3)
