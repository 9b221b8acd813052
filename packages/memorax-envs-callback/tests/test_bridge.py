"""The bridge's own promises, checked through the gymnasium backend (the lightest host env)."""

from __future__ import annotations

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.envs import MultiDiscrete, make
from memorax.envs.host_callbacks import surface_host_errors
from memorax_envs_callback import CallbackVmapError, StaleEnvironmentStateError

NUM_ENVS = 3


class FailsAtStepThree(gymnasium.Env):
    """A real gymnasium env whose simulator breaks on its third step."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gymnasium.spaces.MultiDiscrete([3, 2])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        if self.t == 3:
            raise RuntimeError("simulator diverged at t=3")
        return np.full(2, 0.1 * float(action[0]), np.float32), 1.0, False, False, {}


gymnasium.register("MemoraxFailsAtStepThree-v0", entry_point=FailsAtStepThree)


@pytest.fixture(scope="module")
def cartpole():
    env, params = make("gymnasium::CartPole-v1", num_envs=NUM_ENVS)
    yield env, params, jax.jit(env.reset), jax.jit(env.step)
    env.close()


def _actions(value: int = 0) -> jax.Array:
    return jnp.full((NUM_ENVS,), value, jnp.int32)


def test_make_returns_none_params_and_host_capabilities(cartpole):
    env, params, _, _ = cartpole
    assert params is None
    assert env.capabilities.execution == "host"
    assert not env.capabilities.transparent_state
    assert env.capabilities.vmap_over_seeds  # each seed gets its own host env


def test_state_is_only_a_step_counter_and_a_generation(cartpole):
    _, params, reset, step = cartpole
    _, state = reset(jax.random.key(0), params)
    assert set(state._fields) == {"step", "generation"}
    state = step(jax.random.key(1), state, _actions(), params).state
    assert int(state.step) == 1


def test_state_made_stale_by_a_later_reset_is_refused_with_the_fix(cartpole):
    _, params, reset, step = cartpole
    _, training_state = reset(jax.random.key(0), params)
    reset(jax.random.key(1), params)  # e.g. an evaluation resetting the same env
    with pytest.raises(jax.errors.JaxRuntimeError) as caught:
        jax.block_until_ready(step(jax.random.key(2), training_state, _actions(), params))
    message = str(caught.value)
    assert StaleEnvironmentStateError.__name__ in message
    assert "reset again after this state was made" in message
    assert "evaluate on a separate env" in message


def test_a_stale_step_surfaces_as_its_own_error_type_inside_surface_host_errors(cartpole):
    _, params, reset, step = cartpole
    _, training_state = reset(jax.random.key(0), params)
    reset(jax.random.key(1), params)
    with pytest.raises(StaleEnvironmentStateError) as caught, surface_host_errors():
        jax.block_until_ready(step(jax.random.key(2), training_state, _actions(), params))
    assert isinstance(caught.value.__cause__, jax.errors.JaxRuntimeError)


def test_env_is_usable_after_a_stale_step_was_refused(cartpole):
    _, params, reset, step = cartpole
    _, state = reset(jax.random.key(0), params)
    reset(jax.random.key(1), params)
    with pytest.raises(jax.errors.JaxRuntimeError):
        jax.block_until_ready(step(jax.random.key(2), state, _actions(), params))
    _, state = reset(jax.random.key(3), params)
    result = step(jax.random.key(4), state, _actions(), params)
    assert int(result.state.step) == 1


def _random_rollout(env, key, length=40):
    """Reset from ``key``, then ``length`` steps of actions drawn in the loop."""
    observation, state = env.reset(key, None)

    def one(state, step_key):
        action = jax.random.randint(step_key, (env.num_envs,), 0, 2)
        result = env.step(step_key, state, action, None)
        return result.state, (result.observation, result.reward, result.terminated)

    steps = jax.random.split(jax.random.fold_in(key, 1), length)
    return observation, jax.lax.scan(one, state, steps)[1]


@pytest.fixture(scope="module")
def vmapped():
    """Three seeds of a 40-step rollout in one vmap, on an env of its own."""
    env, _ = make("gymnasium::CartPole-v1", num_envs=NUM_ENVS)
    keys = jax.random.split(jax.random.key(7), 3)
    out = jax.jit(jax.vmap(lambda key: _random_rollout(env, key)))(keys)
    yield env, keys, jax.tree.map(np.asarray, out)
    env.close()


def test_vmap_over_seeds_steps_one_host_env_per_seed_each_as_if_alone(vmapped):
    env, keys, out = vmapped
    assert env.num_host_copies == 3
    assert out[1][2].any(), "the rollouts should cross episode ends"
    assert not np.array_equal(out[0][0], out[0][1]), "seeds must start differently"
    for seed in (0, 2):
        alone, _ = make("gymnasium::CartPole-v1", num_envs=NUM_ENVS)
        try:
            single = jax.jit(lambda key, env=alone: _random_rollout(env, key))(keys[seed])
        finally:
            alone.close()
        for got, want in zip(jax.tree.leaves(out), jax.tree.leaves(single), strict=True):
            np.testing.assert_array_equal(got[seed], np.asarray(want))


def test_a_vmap_over_one_seed_keeps_the_seed_axis_and_equals_the_seed_alone(vmapped):
    # `memorax train --seeds 1` on a callback env: a vmap of size one once lost its axis.
    _, keys, out = vmapped
    one, _ = make("gymnasium::CartPole-v1", num_envs=NUM_ENVS)
    try:
        single = jax.jit(jax.vmap(lambda key: _random_rollout(one, key)))(keys[:1])
    finally:
        one.close()
    for got, want in zip(jax.tree.leaves(single), jax.tree.leaves(out), strict=True):
        assert got.shape == (1, *want.shape[1:])
        np.testing.assert_array_equal(np.asarray(got)[0], want[0])


def test_nested_vmaps_flatten_onto_one_pool_of_host_envs():
    env, _ = make("gymnasium::CartPole-v1", num_envs=NUM_ENVS)
    try:
        keys = jax.random.split(jax.random.key(8), (2, 3))
        nested = jax.jit(jax.vmap(jax.vmap(lambda key: _random_rollout(env, key, 5))))(keys)
        assert nested[0].shape == (2, 3, NUM_ENVS, 4)
        assert env.num_host_copies == 6
        flat = jax.jit(jax.vmap(lambda key: _random_rollout(env, key, 5)))(keys.reshape(6))
        for got, want in zip(jax.tree.leaves(nested), jax.tree.leaves(flat), strict=True):
            np.testing.assert_array_equal(np.asarray(got).reshape(want.shape), want)
    finally:
        env.close()


def test_a_vmapped_state_stepped_twice_is_stale_and_names_the_seed(vmapped):
    env, keys, _ = vmapped
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    actions = jnp.zeros((3, NUM_ENVS), jnp.int32)
    _, states = reset(keys, None)
    jax.block_until_ready(step(keys, states, actions, None))
    stale = pytest.raises(StaleEnvironmentStateError, match=r"seed 0 of a vmapped batch")
    with stale, surface_host_errors():
        jax.block_until_ready(step(keys, states, actions, None))
    # A seed's state moved to another seed's host env is refused too: generations
    # are unique across the pool.
    _, states = reset(keys, None)
    swapped = jax.tree.map(lambda x: x[::-1], states)
    with pytest.raises(StaleEnvironmentStateError, match="reset again"), surface_host_errors():
        jax.block_until_ready(step(keys, swapped, actions, None))


def test_vmap_of_step_with_one_state_for_every_seed_is_refused(cartpole):
    env, params, reset, _ = cartpole
    _, state = reset(jax.random.key(0), params)
    actions = jnp.zeros((2, NUM_ENVS), jnp.int32)
    with pytest.raises(CallbackVmapError, match="state must be batched"):
        jax.vmap(lambda a: env.step(jax.random.key(1), state, a, params))(actions)


def test_a_bridge_without_a_host_factory_refuses_vmap_and_says_why():
    from memorax_envs_callback import CallbackEnvironment
    from memorax_envs_callback.gymnasium import GymnasiumHostEnv

    vector_env = gymnasium.make_vec(
        "CartPole-v1",
        num_envs=2,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gymnasium.vector.AutoresetMode.SAME_STEP},
    )
    env = CallbackEnvironment("custom::CartPole", GymnasiumHostEnv(vector_env, "custom"))
    try:
        assert not env.capabilities.vmap_over_seeds
        with pytest.raises(CallbackVmapError, match="host_factory") as caught:
            jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 2), None)
        assert "cannot be vmapped over seeds" in str(caught.value)
    finally:
        env.close()


def test_close_closes_every_seed_s_host_env():
    env, _ = make("gymnasium::CartPole-v1", num_envs=2, vectorization_mode="async")
    try:
        keys = jax.random.split(jax.random.key(0), 2)
        jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, None)
        processes = [p for copy in env._copies for p in copy.host.env.processes]
        assert len(processes) == 4 and all(p.is_alive() for p in processes)
    finally:
        env.close()
    for process in processes:
        process.join(timeout=10)
    assert not any(process.is_alive() for process in processes)


def test_terminal_final_observation_is_the_failed_pole_and_obs_restarts(cartpole):
    """Pushing left until CartPole fails: final_observation is past the limits, obs is fresh.

    Everywhere no episode ended, final_observation is the observation (the host
    writes the final buffer only in steps where one ended), and the reward
    (carried bitcast beside the flags) is CartPole's 1 per step.
    """
    env, params, reset, _ = cartpole

    @jax.jit
    def push_left(state):
        def one(state, key):
            result = env.step(key, state, _actions(0), params)
            return result.state, (
                result.observation,
                result.info["final_observation"],
                result.terminated,
                result.truncated,
                result.reward,
            )

        return jax.lax.scan(one, state, jax.random.split(jax.random.key(0), 30))[1]

    _, state = reset(jax.random.key(5), params)
    observation, final, terminated, truncated, reward = map(np.asarray, push_left(state))
    assert terminated.any(axis=0).all(), "always pushing left must fail within 30 steps"
    assert not truncated.any()
    t, i = np.argwhere(terminated)[0]
    x, angle = final[t, i, 0], final[t, i, 2]
    assert abs(x) > 2.4 or abs(angle) > 0.2095, "final_observation must be the terminal state"
    assert np.all(np.abs(observation[t, i]) <= 0.05), "obs must be a fresh reset (|s| <= 0.05)"
    assert (~terminated.any(axis=1)).any(), "some steps must end no episode"
    np.testing.assert_array_equal(final[~terminated], observation[~terminated])
    np.testing.assert_array_equal(reward, np.ones_like(reward))
    assert reward.dtype == np.float32


def test_host_exception_reaches_the_user_with_its_message():
    env, params = make("gymnasium::MemoraxFailsAtStepThree-v0", num_envs=2)
    try:
        assert isinstance(env.action_space, MultiDiscrete)
        assert env.action_space.nvec == (3, 2)
        _, state = env.reset(jax.random.key(0), params)
        action = jnp.array([[2, 1], [1, 0]], jnp.int32)
        for _ in range(2):
            result = env.step(jax.random.key(1), state, action, params)
            state = result.state
        np.testing.assert_allclose(result.observation[:, 0], [0.2, 0.1], rtol=1e-6)
        # JaxRuntimeError from a compiled call; newer JAX re-raises the original
        # RuntimeError when the callback runs eagerly. Both are RuntimeErrors.
        with pytest.raises(RuntimeError, match="simulator diverged at t=3"):
            jax.block_until_ready(env.step(jax.random.key(2), state, action, params))
    finally:
        env.close()


def test_async_mode_steps_in_subprocesses_and_close_stops_them():
    env, params = make("gymnasium::CartPole-v1", num_envs=2, vectorization_mode="async")
    processes = list(env._host.env.processes)
    assert len(processes) == 2 and all(p.is_alive() for p in processes)
    _, state = env.reset(jax.random.key(0), params)
    result = env.step(jax.random.key(1), state, jnp.zeros(2, jnp.int32), params)
    assert result.observation.shape == (2, 4)
    env.close()
    for process in processes:
        process.join(timeout=10)
    assert not any(p.is_alive() for p in processes)


def test_stepping_a_closed_env_is_a_clear_error():
    env, params = make("gymnasium::CartPole-v1", num_envs=1)
    _, state = env.reset(jax.random.key(0), params)
    env.close()
    with pytest.raises(RuntimeError, match="was closed"):
        jax.block_until_ready(env.step(jax.random.key(1), state, jnp.zeros(1, jnp.int32), params))


def test_unknown_gymnasium_id_and_bad_mode_are_clear_errors():
    from memorax.envs import UnknownEnvironmentError

    with pytest.raises(UnknownEnvironmentError, match="CartPol"):
        make("gymnasium::CartPol-v1")
    with pytest.raises(ValueError, match="vectorization_mode"):
        make("gymnasium::CartPole-v1", vectorization_mode="threads")


def test_env_params_other_than_none_are_refused(cartpole):
    env, _, _, _ = cartpole
    with pytest.raises(ValueError, match="no env params"):
        env.reset(jax.random.key(0), {"gravity": 9.8})


def test_io_callback_path_for_accelerators_gives_the_same_trajectory():
    """On GPUs the bridge cannot write XLA's buffers in place and uses io_callback instead."""
    from memorax.testing.contract import make_rollout

    rollouts = {}
    for in_place in (True, False):
        env, params = make("gymnasium::CartPole-v1", num_envs=3)
        env.use_buffer_callback = in_place
        # In-place outputs need host buffers: that program runs on the CPU
        # even where the default device is a GPU (then the other one runs there).
        device = jax.devices("cpu")[0] if in_place else jax.devices()[0]
        try:
            with jax.default_device(device):
                out = jax.jit(make_rollout(env, 40))(jax.random.key(0), params)
            rollouts[in_place] = jax.tree.map(np.asarray, out)
        finally:
            env.close()
    assert rollouts[True]["terminated"].any(), "the rollout should cross an episode end"
    for name in rollouts[True]:
        np.testing.assert_array_equal(rollouts[True][name], rollouts[False][name], err_msg=name)


def test_vmap_over_seeds_on_the_io_callback_path_matches_the_in_place_path(vmapped):
    _, keys, in_place = vmapped
    env, _ = make("gymnasium::CartPole-v1", num_envs=NUM_ENVS)
    env.use_buffer_callback = False
    try:
        out = jax.jit(jax.vmap(lambda key: _random_rollout(env, key)))(keys)
        for got, want in zip(jax.tree.leaves(out), jax.tree.leaves(in_place), strict=True):
            np.testing.assert_array_equal(np.asarray(got), want)
    finally:
        env.close()


def test_io_callback_path_keeps_working_after_a_host_error():
    """An error in one host call must not poison every later call of the process.

    JAX threads one runtime token through ``io_callback(ordered=True)`` calls and
    an error in one leaves that token failed, so on a GPU every later program
    with an ordered callback re-raised the first error (seen on an H200 with
    jax 0.11.2). The bridge orders its calls through data instead.
    """
    env, params = make("gymnasium::CartPole-v1", num_envs=2)
    env.use_buffer_callback = False
    try:
        reset, step = jax.jit(env.reset), jax.jit(env.step)
        actions = jnp.zeros((2,), jnp.int32)
        _, state = reset(jax.random.key(0), params)
        step(jax.random.key(1), state, actions, params)
        with pytest.raises(Exception, match="stale environment state"):
            jax.block_until_ready(step(jax.random.key(1), state, actions, params))
        _, state = reset(jax.random.key(2), params)
        result = jax.block_until_ready(step(jax.random.key(3), state, actions, params))
        assert int(result.state.step) == 1
    finally:
        env.close()


def test_close_right_after_a_host_error_closes_without_raising_it_again():
    """The error reached the caller of its program; closing must not re-raise it.

    On a GPU, JAX kept a failed callback's error for the next
    ``effects_barrier``, the one ``close`` waits on, so closing raised the old
    error and left the host env open.
    """
    env, params = make("gymnasium::CartPole-v1", num_envs=2)
    env.use_buffer_callback = False
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    _, state = reset(jax.random.key(0), params)
    with pytest.raises(RuntimeError, match="out of range"):
        jax.block_until_ready(step(jax.random.key(1), state, jnp.full((2,), 7, jnp.int32), params))
    env.close()
    with pytest.raises(RuntimeError, match="was closed"):
        jax.block_until_ready(step(jax.random.key(2), state, jnp.zeros(2, jnp.int32), params))
