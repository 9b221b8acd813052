"""Every script in examples/ trains, evaluates and returns a finite mean return.

Each runs through its own ``main`` with a budget of one or a few updates:
enough to compile and run every part (make, init, train, evaluate) the way
a user runs it, not to learn. Whether the default budgets learn is recorded
in each script's docstring and in the docs. `nox -s examples` installs the
backends they need.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_main(name: str) -> Callable[[list[str]], float]:
    """The ``main`` of ``examples/<name>.py``, imported from its file."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples.{name}", path)
    assert spec is not None and spec.loader is not None, f"cannot import {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and flax modules look their module up
    spec.loader.exec_module(module)
    return module.main


def run_tiny(name: str, num_steps: int) -> float:
    mean_return = example_main(name)(["--num-steps", str(num_steps), "--seed", "0"])
    assert isinstance(mean_return, float)
    assert math.isfinite(mean_return), f"{name} returned {mean_return}"
    return mean_return


def test_ppo_gru_navix_runs_four_seeds_and_returns_a_finite_mean():
    # One update of 16 envs x 64 steps per seed; navix rewards lie in [0, 1].
    assert 0.0 <= run_tiny("ppo_gru_navix", 1_024) <= 1.0


def test_ppo_ale_trains_and_evaluates_on_a_separate_pong_env():
    # One update of 8 envs x 128 steps (about 100 s on 2 loaded cores, evaluation
    # included); a Pong score lies in [-21, 21].
    assert -21.0 <= run_tiny("ppo_ale", 1_024) <= 21.0


def test_pqn_pufferlib_trains_and_evaluates_on_a_separate_cartpole_env():
    # One update of 32 envs x 16 steps; a CartPole episode scores 1 per step, at most 500.
    assert 1.0 <= run_tiny("pqn_pufferlib", 512) <= 500.0


def test_ppo_craftax_trains_and_evaluates_classic_symbolic():
    # One update of 32 envs x 64 steps; a return counts achievements (at most 22) plus a
    # tenth of the health gained, which telescopes to at least -0.9 over an episode.
    assert -1.0 <= run_tiny("ppo_craftax", 2_048) <= 22.0


def test_r2d2_memory_chain_runs_past_learning_starts():
    # 10 iterations of 16 envs x 8 steps: the last two take gradient steps.
    assert -1.0 <= run_tiny("r2d2_memory_chain", 1_280) <= 1.0


def test_sac_pendulum_runs_past_learning_starts():
    # 512 steps of 4 envs; learning starts halfway. A Pendulum step costs at most
    # pi^2 + 0.1 * 8^2 + 0.001 * 2^2 = 16.27, so a 200-step episode scores in [-3,255, 0].
    assert -3_300.0 <= run_tiny("sac_pendulum", 512) <= 0.0
