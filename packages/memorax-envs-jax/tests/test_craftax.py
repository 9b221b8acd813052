"""craftax backend: end-of-episode mapping, kwargs routing, determinism.

Compiling a craftax step takes tens of seconds on two cores, so every test
that runs the env shares the one jitted ``reset`` / ``step`` of the
module-scoped fixture; changed params and edited states are arguments, not
recompiles.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.envs import EnvironmentKwargsError, UnknownEnvironmentError, make
from memorax_envs_jax.craftax import CRAFTAX_IDS

ENV_ID = "craftax::Craftax-Classic-Symbolic-v1"
NOOP = 0


@pytest.fixture(scope="module")
def classic():
    """Two copies of Craftax-Classic with jitted reset and step."""
    env, params = make(ENV_ID, num_envs=2)
    return env, params, jax.jit(env.reset), jax.jit(env.step)


def noop(env):
    return jnp.full((env.num_envs,), NOOP, jnp.int32)


def test_time_limit_end_is_truncated_not_terminated(classic):
    env, params, reset, step = classic
    limited = params.replace(max_timesteps=3)
    _, state = reset(jax.random.key(0), limited)
    flags = []
    for i in range(3):
        result = step(jax.random.key(10 + i), state, noop(env), limited)
        flags.append((np.asarray(result.terminated), np.asarray(result.truncated)))
        state = result.state
    terminated, truncated = (np.stack(f) for f in zip(*flags, strict=True))
    assert not terminated.any()
    np.testing.assert_array_equal(truncated, [[False, False], [False, False], [True, True]])
    # Same-step auto-reset: the new episode starts now, the old one's last obs is kept.
    assert np.all(np.asarray(result.state.timestep) == 0)
    assert not np.array_equal(result.observation, result.info["final_observation"])


def test_death_is_terminated_not_truncated(classic):
    env, params, reset, step = classic
    _, state = reset(jax.random.key(1), params)
    dying = state.replace(player_health=jnp.zeros_like(state.player_health))
    result = step(jax.random.key(2), dying, noop(env), params)
    assert np.all(np.asarray(result.terminated))
    assert not np.any(np.asarray(result.truncated))
    assert np.all(np.asarray(result.state.player_health) == 9)
    assert not np.array_equal(result.observation, result.info["final_observation"])


def test_death_on_the_last_allowed_step_is_terminated(classic):
    # craftax's done is true for both reasons here; dying wins: nothing to bootstrap.
    env, params, reset, step = classic
    last_step = params.replace(max_timesteps=1)
    _, state = reset(jax.random.key(3), last_step)
    dying = state.replace(player_health=jnp.zeros_like(state.player_health))
    result = step(jax.random.key(4), dying, noop(env), last_step)
    assert np.all(np.asarray(result.terminated))
    assert not np.any(np.asarray(result.truncated))


def test_episode_continues_while_alive_and_within_the_limit(classic):
    env, params, reset, step = classic
    _, state = reset(jax.random.key(5), params)
    result = step(jax.random.key(6), state, noop(env), params)
    assert not np.any(np.asarray(result.terminated) | np.asarray(result.truncated))
    np.testing.assert_array_equal(result.observation, result.info["final_observation"])
    assert np.all(np.asarray(result.state.timestep) == 1)


def test_same_key_gives_the_same_trajectory(classic):
    _, params, reset, step = classic

    def trajectory(seed):
        observation, state = reset(jax.random.key(seed), params)
        observations = [observation]
        for i in range(2):
            action = jnp.asarray([1 + i, 5], jnp.int32)
            result = step(jax.random.fold_in(jax.random.key(seed), i), state, action, params)
            observations.append(result.observation)
            state = result.state
        return np.stack(observations)

    np.testing.assert_array_equal(trajectory(7), trajectory(7))
    assert not np.array_equal(trajectory(7)[0], trajectory(8)[0])


def test_env_param_kwargs_reach_the_params_and_static_kwargs_the_world():
    env, params = make(ENV_ID, num_envs=1, max_timesteps=50, map_size=(32, 32))
    assert params.max_timesteps == 50
    assert env.default_params() is params
    _, state = jax.eval_shape(env.reset, jax.random.key(0), params)
    assert state.map.shape == (1, 32, 32)


def test_unknown_kwarg_names_both_kinds_of_params():
    with pytest.raises(EnvironmentKwargsError) as error:
        make(ENV_ID, max_timestep=5)
    message = str(error.value)
    assert "did you mean 'max_timesteps'" in message
    assert "env params:" in message
    assert "static env params:" in message


# The first use of a pixel id after installing craftax builds craftax's texture
# cache inside its package folder (minutes on two cores), so these traces run
# in `nox -s expensive`, not in CI.
EXPENSIVE_TO_TRACE = {"Craftax-Pixels-v1", "Craftax-Classic-Pixels-v1"}


@pytest.mark.parametrize(
    "env_id",
    [
        pytest.param(i, marks=pytest.mark.expensive) if i in EXPENSIVE_TO_TRACE else i
        for i in CRAFTAX_IDS
    ],
)
def test_observations_match_the_declared_space(env_id):
    # Traced, not compiled: shapes and dtypes without the minute-long compile.
    env, params = make(f"craftax::{env_id}", num_envs=1)
    observation, state = jax.eval_shape(env.reset, jax.random.key(0), params)
    action = jnp.zeros((1,), jnp.int32)
    stepped = jax.eval_shape(env.step, jax.random.key(1), state, action, params)
    space = env.observation_space
    for array in (observation, stepped.observation, stepped.info["final_observation"]):
        assert array.shape == (1, *space.shape)
        assert array.dtype == jnp.dtype(space.dtype) == jnp.float32
    assert (space.low_array.min(), space.high_array.max()) == (0.0, 1.0)


def test_unknown_id_suggests_the_closest_game():
    with pytest.raises(UnknownEnvironmentError, match="Craftax-Classic-Symbolic-v1"):
        make("craftax::Craftax-Clasic-Symbolic-v1")
