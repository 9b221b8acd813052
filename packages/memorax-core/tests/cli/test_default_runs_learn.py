"""Every ``--algo`` learns the CLI's default env (gymnax CartPole-v1) with its defaults.

Each test is ``memorax train --algo ALGO --total-steps N --seeds 1`` with
nothing else changed, at a budget a few times smaller than the point where
the default run reaches 200-500 on this machine; it must beat a uniformly
random policy three times over. The fixed seed makes each run reproducible.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import pytest

from memorax.cli import main
from memorax.envs import make

pytestmark = pytest.mark.slow

# Env steps per run, each well past where the default run first clears 100 (measured:
# ppo 500 at 20k, pqn 418 at 20k, dqn 126 at 40k, sac 213 at 10k, r2d2 208 at 50k).
BUDGETS = {"ppo": 20_000, "pqn": 20_000, "dqn": 40_000, "sac": 10_000, "r2d2": 50_000}


@pytest.fixture(scope="module")
def random_policy_return() -> float:
    """Mean return of uniformly random actions on the default env, over 256 episodes."""
    env, params = make("gymnax::CartPole-v1", num_envs=256)

    def step(carry, key):
        state, alive, total = carry
        action_key, step_key = jax.random.split(key)
        actions = jax.vmap(env.action_space.sample)(jax.random.split(action_key, 256))
        _, state, reward, terminated, truncated, _ = env.step(step_key, state, actions, params)
        total = total + reward * alive
        return (state, alive & ~(terminated | truncated), total), None

    _, state = env.reset(jax.random.key(0), params)
    carry = (state, jnp.ones(256, bool), jnp.zeros(256))
    (_, alive, total), _ = jax.lax.scan(step, carry, jax.random.split(jax.random.key(1), 500))
    assert not bool(alive.any())  # every episode ended (CartPole truncates at 500)
    return float(total.mean())


@pytest.mark.parametrize("algo", list(BUDGETS))
def test_the_default_run_beats_a_random_policy(algo, random_policy_return, tmp_path, capsys):
    argv = ["train", "--algo", algo, "--total-steps", str(BUDGETS[algo]), "--seeds", "1",
            "--out", str(tmp_path / algo)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    found = re.search(r"evaluation return \(deterministic policy\) per seed: ([-\d.]+)", printed)
    assert found, printed[-2000:]
    assert float(found.group(1)) >= 3 * random_policy_return, (
        f"{algo}: {found.group(1)} after {BUDGETS[algo]:,} steps, random policy "
        f"{random_policy_return:.1f}"
    )
