"""Runs written before the agent skeleton resume with ``memorax train --resume``.

``data/runs_before_skeleton/<algo>`` holds a tiny run of each agent (GRU torso,
MemoryChain, 32 env steps) with its last checkpoint, written by the code of
commit c91a35d. PPO, PQN, DQN and SAC states kept their layout and continue;
R2D2's optimizer state lost an empty gradient-clipping entry, so its checkpoint
is refused with a message that says what differs, before anything is written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from memorax.cli import main

RUNS = Path(__file__).parent / "data" / "runs_before_skeleton"


def copy_of(algo: str, tmp_path: Path) -> Path:
    run_dir = tmp_path / algo
    shutil.copytree(RUNS / algo, run_dir)
    return run_dir


def checkpoint_steps(run_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())


@pytest.mark.parametrize("algo", ["ppo", "pqn", "dqn", "sac"])
def test_a_run_from_before_the_skeleton_continues(algo, tmp_path):
    run_dir = copy_of(algo, tmp_path)
    assert checkpoint_steps(run_dir) == [32]
    assert main(["train", "--resume", str(run_dir), "--num-steps", "48"]) == 0
    assert checkpoint_steps(run_dir)[-1] == 48


def test_an_r2d2_run_from_before_the_skeleton_is_refused_with_what_differs(tmp_path, capsys):
    run_dir = copy_of("r2d2", tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--resume", str(run_dir), "--num-steps", "48"])
    assert exit_.value.code == 2
    message = capsys.readouterr().err
    assert "does not fit the agent this version of Memorax builds" in message
    assert "optimizer_state" in message
    assert "older Memorax" in message
    assert checkpoint_steps(run_dir) == [32]
