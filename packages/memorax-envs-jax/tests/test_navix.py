"""navix backend: end-of-episode mapping checked against navix itself, kwargs, keys.

navix's own ``step`` is the reference: the same action sequence runs through
navix directly and through the Memorax env, and the step types must agree
with ``terminated`` / ``truncated``. Each env is compiled once per module.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import navix
import numpy as np
import pytest

from memorax.envs import EnvironmentKwargsError, make

ENV_ID = "navix::Navix-Empty-5x5-v0"
ROTATE_CCW, ROTATE_CW, FORWARD = 0, 1, 2
# The player starts at (1, 1) facing east; the goal is at (3, 3).
TO_GOAL = (FORWARD, FORWARD, ROTATE_CW, FORWARD, FORWARD)
SPIN = (ROTATE_CCW,) * 5
PLAYER_TAG = 10


@pytest.fixture(scope="module")
def room():
    """Two copies of the 5x5 room (navix's default 100-step limit), jitted."""
    env, params = make(ENV_ID, num_envs=2)
    return env, params, jax.jit(env.reset), jax.jit(env.step)


@pytest.fixture(scope="module")
def navix_five_step_room():
    """navix's own 5x5 room with a 5-step limit and its own (lazily resetting) step."""
    env = navix.make("Navix-Empty-5x5-v0", max_steps=5)
    return env, jax.jit(env.step)


def play(room, actions, params):
    """Steps both copies through ``actions``; returns the StepResults (numpy but the state)."""
    env, _, reset, step = room
    _, state = reset(jax.random.key(0), params)
    results = []
    for i, action in enumerate(actions):
        batch = jnp.full((env.num_envs,), action, jnp.int32)
        result = step(jax.random.key(100 + i), state, batch, params)
        # The navix state holds PRNG keys, which numpy cannot hold.
        results.append(
            result._replace(
                **{
                    name: jax.tree.map(np.asarray, getattr(result, name))
                    for name in ("observation", "reward", "terminated", "truncated", "info")
                }
            )
        )
        state = result.state
    return results


def navix_step_types(navix_room, actions):
    """navix's own step types for ``actions`` from a reset."""
    env, step = navix_room
    timestep = env.reset(jax.random.key(0))
    types = []
    for action in actions:
        timestep = step(timestep, jnp.asarray(action, jnp.int32))
        types.append(int(timestep.step_type))
    return types


def test_reaching_the_goal_on_the_last_allowed_step_terminates_as_in_navix(
    room, navix_five_step_room
):
    _, params, _, _ = room
    results = play(room, TO_GOAL, params.replace(max_steps=jnp.int32(5)))
    assert navix_step_types(navix_five_step_room, TO_GOAL)[-1] == navix.StepType.TERMINATION
    assert [r.terminated.all() for r in results] == [False] * 4 + [True]
    assert not any(r.truncated.any() for r in results)


def test_time_limit_truncates_as_in_navix(room, navix_five_step_room):
    _, params, _, _ = room
    results = play(room, SPIN, params.replace(max_steps=jnp.int32(5)))
    assert navix_step_types(navix_five_step_room, SPIN) == [0, 0, 0, 0, 1]
    assert [r.truncated.all() for r in results] == [False] * 4 + [True]
    assert not any(r.terminated.any() for r in results)


def test_goal_ends_the_episode_and_the_next_starts_in_the_same_step(room):
    _, params, reset, _ = room
    results = play(room, (*TO_GOAL, FORWARD), params)
    first_observation, _ = reset(jax.random.key(1), params)
    at_goal = results[4]
    assert at_goal.terminated.all() and not at_goal.truncated.any()
    assert np.all(at_goal.reward > 0)
    # The ended episode's last observation shows the player on the goal ...
    np.testing.assert_array_equal(at_goal.info["final_observation"][:, 3, 3, 0], PLAYER_TAG)
    # ... and the returned one already starts the next episode, player back at (1, 1).
    np.testing.assert_array_equal(at_goal.observation, first_observation)
    # navix itself would spend the next call on its reset; here it is a real move.
    np.testing.assert_array_equal(np.asarray(results[5].state.t), 1)
    np.testing.assert_array_equal(results[5].observation[:, 1, 2, 0], PLAYER_TAG)


def test_step_key_drives_the_moving_obstacles():
    env, params = make("navix::Navix-Dynamic-Obstacles-5x5-v0", num_envs=1)
    step = jax.jit(env.step)
    _, state = env.reset(jax.random.key(0), params)
    action = jnp.asarray([ROTATE_CCW], jnp.int32)
    observations = [np.asarray(step(jax.random.key(k), state, action, params)[0]) for k in range(6)]
    again = np.asarray(step(jax.random.key(0), state, action, params)[0])
    np.testing.assert_array_equal(observations[0], again)
    assert any(not np.array_equal(observations[0], other) for other in observations[1:])


def test_max_steps_kwarg_sets_the_env_params():
    env, params = make(ENV_ID, max_steps=7)
    assert int(params.max_steps) == 7
    assert env.default_params() is params


def test_unknown_kwarg_suggests_the_constructor_argument():
    with pytest.raises(EnvironmentKwargsError, match="did you mean 'max_steps'"):
        make(ENV_ID, max_step=7)


def test_kwarg_fixed_by_the_id_is_a_clear_error():
    with pytest.raises(EnvironmentKwargsError, match="fixes the grid layout"):
        make(ENV_ID, height=7)


def test_observation_fn_by_name_sets_the_observation_space():
    env, params = make(ENV_ID, observation_fn="rgb_first_person")
    observation, _ = jax.eval_shape(env.reset, jax.random.key(0), params)
    assert observation.shape == (1, *env.observation_space.shape)
    assert observation.dtype == env.observation_space.dtype == jnp.uint8
    assert env.observation_space.shape[-1] == 3


def test_unknown_observation_fn_name_lists_the_known_ones():
    with pytest.raises(EnvironmentKwargsError, match="symbolic_first_person"):
        make(ENV_ID, observation_fn="pixels")


def test_default_observation_is_the_uint8_symbolic_grid(room):
    env, params, reset, _ = room
    observation, _ = reset(jax.random.key(2), params)
    assert env.observation_space.shape == (5, 5, 3)
    assert observation.dtype == env.observation_space.dtype == jnp.uint8
    assert bool(jax.vmap(env.observation_space.contains)(observation).all())
