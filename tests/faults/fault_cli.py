"""`memorax` with gymnasium envs that fail on purpose, for the fault tests.

Run as ``python fault_cli.py train --env gymnasium::NaNRewardCartPole-v0 ...``:
the envs below are registered with gymnasium (as a user registers their own
env), then the real CLI runs. ``MEMORAX_FAULT_AFTER`` sets after how many
steps (over all copies of the process) the fault starts.
"""

from __future__ import annotations

import os
import sys

import gymnasium
from gymnasium.envs.classic_control import CartPoleEnv, PendulumEnv

FAULT_AFTER = int(os.environ.get("MEMORAX_FAULT_AFTER", "3000"))


class _Countdown:
    """Counts the steps of every env of the process, so the fault starts at one point."""

    steps = 0

    @classmethod
    def faulty(cls) -> bool:
        cls.steps += 1
        return cls.steps > FAULT_AFTER


def _poisoned(reward: float) -> float:
    """``reward``, or NaN once the countdown ran out."""
    return float("nan") if _Countdown.faulty() else reward


class NaNRewardCartPole(CartPoleEnv):
    """CartPole whose reward is NaN once the countdown ran out (a broken reward function)."""

    def step(self, action):
        observation, reward, terminated, truncated, info = super().step(action)
        return observation, _poisoned(reward), terminated, truncated, info


class NaNRewardPendulum(PendulumEnv):
    """Pendulum (continuous actions, for SAC) whose reward turns NaN."""

    def step(self, action):
        observation, reward, terminated, truncated, info = super().step(action)
        return observation, _poisoned(reward), terminated, truncated, info


class CrashingCartPole(CartPoleEnv):
    """CartPole whose step raises once the countdown ran out (a simulator that crashes)."""

    def step(self, action):
        if _Countdown.faulty():
            raise RuntimeError("simulator lost its connection (CrashingCartPole.step)")
        return super().step(action)


gymnasium.register("NaNRewardCartPole-v0", entry_point=NaNRewardCartPole, max_episode_steps=500)
gymnasium.register("NaNRewardPendulum-v0", entry_point=NaNRewardPendulum, max_episode_steps=200)
gymnasium.register("CrashingCartPole-v0", entry_point=CrashingCartPole, max_episode_steps=500)

if __name__ == "__main__":
    from memorax.cli.main import main

    sys.exit(main(sys.argv[1:]))
