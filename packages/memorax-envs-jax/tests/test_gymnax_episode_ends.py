"""gymnax backend: how each registered id ends, termination or time limit.

The table below is the spec. It is written from the definitions gymnax
re-implements, not from gymnax's ``is_terminal`` (which treats every step
limit alike), and it must name every id gymnax registers, so a gymnax
release that adds ids fails here until someone classifies them.
"""

from __future__ import annotations

import functools

import gymnax
import jax
import numpy as np
import pytest

from memorax.envs import make
from memorax_envs_jax.gymnax import FIXED_HORIZON_IDS

TERMINATION = "termination"
TIME_LIMIT = "time limit"

EPISODE_ENDS = {
    # gymnasium registers these with max_episode_steps, applied by its
    # TimeLimit wrapper: reaching it is a truncation.
    "CartPole-v1": TIME_LIMIT,
    "Pendulum-v1": TIME_LIMIT,
    "Acrobot-v1": TIME_LIMIT,
    "MountainCar-v0": TIME_LIMIT,
    "MountainCarContinuous-v0": TIME_LIMIT,
    # MinAtar's Asterix, Breakout and Space Invaders have no step limit of their
    # own; gymnax's 1000 steps is one laid on top.
    "Asterix-MinAtar": TIME_LIMIT,
    "Breakout-MinAtar": TIME_LIMIT,
    "SpaceInvaders-MinAtar": TIME_LIMIT,
    "Seaquest-MinAtar": TIME_LIMIT,
    # MinAtar's Freeway sets ``terminal`` when its own 2500-frame timer runs out.
    "Freeway-MinAtar": TERMINATION,
    # bsuite's Catch, DeepSea, MemoryChain and UmbrellaChain end by their own
    # dm_env.termination; gymnax's step limit is only a safety net.
    "Catch-bsuite": TIME_LIMIT,
    "DeepSea-bsuite": TIME_LIMIT,
    "MemoryChain-bsuite": TIME_LIMIT,
    "UmbrellaChain-bsuite": TIME_LIMIT,
    # bsuite's DiscountingChain returns dm_env.termination after its fixed n_steps.
    "DiscountingChain-bsuite": TERMINATION,
    # bsuite's bandits are one-step episodes: every step is a termination.
    "SimpleBandit-bsuite": TERMINATION,
    "MNISTBandit-bsuite": TERMINATION,
    # Goal-reaching and control tasks whose sources (gym-fourrooms, ivy_gym's
    # reacher and swimmer, batch_pong_poc) set no step limit of their own.
    "FourRooms-misc": TIME_LIMIT,
    "Pong-misc": TIME_LIMIT,
    "Reacher-misc": TIME_LIMIT,
    "Swimmer-misc": TIME_LIMIT,
    # gymnasium registers FrozenLake with max_episode_steps=100 (TimeLimit); its own
    # end is a hole or the goal.
    "FrozenLake-misc": TIME_LIMIT,
    # Meta-RL trials of a fixed length, the time step in the observation:
    # bandits of a fixed number of pulls (Wang et al. 2017; Lange & Sprekeler
    # 2022), and the point robot (Dorfman et al. 2021) and maze (Miconi et al.
    # 2019) that keep one goal for the trial and move the agent on each hit.
    # A new task is drawn after the last step, so nothing follows it.
    "BernoulliBandit-misc": TERMINATION,
    "GaussianBandit-misc": TERMINATION,
    "PointRobot-misc": TERMINATION,
    "MetaMaze-misc": TERMINATION,
}

# Ids whose every step is terminal whatever max_steps_in_episode says.
ONE_STEP_IDS = frozenset({"SimpleBandit-bsuite", "MNISTBandit-bsuite"})

# Ids the runtime check leaves out, and why.
NOT_RUN = {"MNISTBandit-bsuite": "its constructor downloads MNIST"}

RUNTIME_IDS = sorted(set(EPISODE_ENDS) - set(NOT_RUN))

NUM_ENVS = 4
# The runs are a few steps long, so compile time is the cost: skip the
# backend's expensive optimisations (about half the compile time on CPU).
QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
HORIZON = 3
HORIZONS: dict[str, int | float] = {
    # One-step episodes can only reach a horizon of one step.
    **dict.fromkeys(ONE_STEP_IDS, 1),
    # gymnax declares this one's step limit a float; its observation space
    # fails to build from an int.
    "BernoulliBandit-misc": float(HORIZON),
}


@functools.cache
def episode_ends_player(env_id: str, horizon: int | float | None) -> jax.stages.Compiled:
    """A compiled ``key -> (terminated, truncated)``, each ``[steps, num_envs]``.

    ``horizon`` overrides ``max_steps_in_episode`` (``None`` keeps gymnax's
    default) and the player steps exactly that many times. Actions are drawn
    from the env's action space under keys split from ``key``, so the same key
    plays the same episodes. Cached so each id compiles once per session.
    """
    kwargs = {} if horizon is None else {"max_steps_in_episode": horizon}
    env, params = make(f"gymnax::{env_id}", num_envs=NUM_ENVS, **kwargs)
    steps = int(params.max_steps_in_episode)

    def one_step(state, key):
        action_key, env_key = jax.random.split(key)
        action = jax.vmap(env.action_space.sample)(jax.random.split(action_key, NUM_ENVS))
        result = env.step(env_key, state, action, params)
        return result.state, (result.terminated, result.truncated)

    def play(key):
        reset_key, step_key = jax.random.split(key)
        _, state = env.reset(reset_key, params)
        _, ends = jax.lax.scan(one_step, state, jax.random.split(step_key, steps))
        return ends

    return jax.jit(play).lower(jax.random.key(0)).compile(QUICK_COMPILE)


def run_episode_ends(
    env_id: str, horizon: int | float | None, key: jax.Array
) -> tuple[np.ndarray, np.ndarray]:
    """``terminated`` and ``truncated`` as numpy arrays ``[steps, num_envs]``."""
    terminated, truncated = episode_ends_player(env_id, horizon)(key)
    return np.asarray(terminated), np.asarray(truncated)


def test_table_classifies_exactly_the_registered_ids():
    assert set(EPISODE_ENDS) == set(gymnax.registered_envs), (
        "classify each new gymnax id as termination or time limit in EPISODE_ENDS; "
        f"unclassified: {sorted(set(gymnax.registered_envs) - set(EPISODE_ENDS))}, "
        f"no longer registered: {sorted(set(EPISODE_ENDS) - set(gymnax.registered_envs))}"
    )
    assert set(EPISODE_ENDS.values()) == {TERMINATION, TIME_LIMIT}


def test_adapter_fixed_horizons_are_the_table_terminations():
    terminations = {env_id for env_id, end in EPISODE_ENDS.items() if end == TERMINATION}
    # One-step bandits terminate through gymnax's own is_terminal; the adapter
    # table is only needed where the step limit is the end.
    assert set(FIXED_HORIZON_IDS) == terminations - ONE_STEP_IDS
    assert all(reason.strip() for reason in FIXED_HORIZON_IDS.values())


def test_ids_left_out_of_the_runtime_check_are_named_with_a_reason():
    run = set(RUNTIME_IDS)
    assert run.isdisjoint(NOT_RUN)
    assert run | set(NOT_RUN) == set(EPISODE_ENDS)
    assert all(reason.strip() for reason in NOT_RUN.values())


@pytest.mark.parametrize("env_id", RUNTIME_IDS)
def test_reaching_the_horizon_ends_as_the_table_says(env_id):
    horizon = HORIZONS.get(env_id, HORIZON)
    terminated, truncated = run_episode_ends(env_id, horizon, jax.random.key(0))

    # A step limit cannot fire before it is reached; an env's own terminal
    # condition may, except where the step limit is the task's only end.
    before = slice(0, int(horizon) - 1)
    assert not truncated[before].any(), f"{env_id}: truncated before step {horizon}"
    if env_id in FIXED_HORIZON_IDS:
        assert not terminated[before].any(), f"{env_id}: ended before its fixed horizon"

    reached = ~(terminated[before] | truncated[before]).any(axis=0)
    assert reached.any(), f"{env_id}: no copy reached step {horizon}; lower its horizon"
    expect_terminated = EPISODE_ENDS[env_id] == TERMINATION
    np.testing.assert_array_equal(
        terminated[-1][reached], expect_terminated, err_msg=f"{env_id}: terminated at horizon"
    )
    np.testing.assert_array_equal(
        truncated[-1][reached], not expect_terminated, err_msg=f"{env_id}: truncated at horizon"
    )


def test_runs_are_reproducible_under_a_fixed_key():
    first = run_episode_ends("CartPole-v1", HORIZON, jax.random.key(3))
    second = run_episode_ends("CartPole-v1", HORIZON, jax.random.key(3))
    np.testing.assert_array_equal(first, second)


def test_discounting_chain_terminates_at_its_default_horizon():
    """bsuite's chain ends with a termination after its 100 steps; no bootstrap past it."""
    terminated, truncated = run_episode_ends("DiscountingChain-bsuite", None, jax.random.key(0))
    assert terminated.shape == (100, NUM_ENVS)
    assert not (terminated[:-1] | truncated[:-1]).any()
    assert terminated[-1].all()
    assert not truncated[-1].any()
