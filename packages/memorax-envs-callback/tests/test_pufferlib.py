"""PufferLib backend: both vector backends, user env creators, worker failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.envs import make

NUM_ENVS = 4


class FailsAtStepTwo(gymnasium.Env):
    """A real gymnasium env whose simulator breaks on its second step."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.full(3, 0.5 * self.scale, np.float32), {}

    def step(self, action):
        self.t += 1
        if self.t == 2:
            raise RuntimeError("custom simulator exploded at t=2")
        return np.zeros(3, np.float32), 1.0, False, False, {}


def _rollout(env, params, key, length=40):
    @jax.jit
    def run(key):
        reset_key, steps_key = jax.random.split(key)
        observation, state = env.reset(reset_key, params)

        def one(state, key):
            action = jax.random.randint(key, (env.num_envs,), 0, 2)
            result = env.step(key, state, action, params)
            return result.state, (
                result.observation,
                result.info["final_observation"],
                result.terminated,
                result.truncated,
            )

        return observation, jax.lax.scan(one, state, jax.random.split(steps_key, length))[1]

    return jax.tree.map(np.asarray, run(key))


@pytest.fixture(scope="module")
def rollouts():
    """The same key rolled out on Serial and on Multiprocessing."""
    out = {}
    for backend in ("Serial", "Multiprocessing"):
        kwargs = {"num_workers": 2} if backend == "Multiprocessing" else {}
        env, params = make("pufferlib::CartPole-v1", num_envs=NUM_ENVS, backend=backend, **kwargs)
        try:
            out[backend] = _rollout(env, params, jax.random.key(3))
        finally:
            env.close()
    return out


def test_serial_and_multiprocessing_give_the_same_trajectory(rollouts):
    serial, multiprocessing = rollouts["Serial"], rollouts["Multiprocessing"]
    for a, b in zip(jax.tree.leaves(serial), jax.tree.leaves(multiprocessing), strict=True):
        np.testing.assert_array_equal(a, b)


def test_copies_start_from_different_seeds(rollouts):
    first, _ = rollouts["Multiprocessing"]
    assert len({tuple(row) for row in first.round(6)}) == NUM_ENVS


def test_episode_end_resets_in_the_same_step(rollouts):
    """No reset transition in the stream: the step after an end is an ordinary step."""
    _, (observation, final, terminated, truncated) = rollouts["Serial"]
    ended = np.argwhere(terminated | truncated)
    assert len(ended), "random CartPole play must end an episode within 40 steps"
    for t, i in ended:
        x, angle = final[t, i, 0], final[t, i, 2]
        assert abs(x) > 2.4 or abs(angle) > 0.2095, "final_observation is the terminal state"
        assert np.all(np.abs(observation[t, i]) <= 0.05), "obs is the next episode's first"
        if t + 1 < len(observation):
            # One real step from a fresh reset: still near the origin, not a repeated reset obs.
            assert not np.array_equal(observation[t + 1, i], observation[t, i])


@pytest.mark.parametrize("backend", ["Serial", "Multiprocessing"])
def test_user_env_creator_and_host_exception_message_reach_the_user(backend):
    """Serial steps its copies directly (not through PufferLib's send), Multiprocessing in workers:
    an exception inside a copy reaches the user with its message either way."""
    workers = {"num_workers": 1} if backend == "Multiprocessing" else {}
    env, params = make(
        "pufferlib::FailsAtStepTwo",
        num_envs=2,
        backend=backend,
        env_creator=FailsAtStepTwo,
        scale=2.0,
        **workers,
    )
    try:
        observation, state = env.reset(jax.random.key(0), params)
        np.testing.assert_allclose(observation, np.ones((2, 3)))
        state = env.step(jax.random.key(1), state, jnp.zeros(2, jnp.int32), params).state
        # A RuntimeError either way: JaxRuntimeError from a compiled call, the
        # bridge's HostEnvironmentError itself where newer JAX re-raises it.
        with pytest.raises(RuntimeError, match="custom simulator exploded at t=2"):
            jax.block_until_ready(env.step(jax.random.key(2), state, jnp.zeros(2, jnp.int32)))
    finally:
        env.close()


def test_dead_worker_is_an_error_not_a_hang():
    env, params = make(
        "pufferlib::CartPole-v1", num_envs=2, backend="Multiprocessing", num_workers=1
    )
    try:
        _, state = env.reset(jax.random.key(0), params)
        (worker,) = env._host.vecenv.processes
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(timeout=10)
        with pytest.raises(RuntimeError, match=r"worker process \d+ died"):
            jax.block_until_ready(env.step(jax.random.key(1), state, jnp.zeros(2, jnp.int32)))
    finally:
        env.close()


def test_close_stops_the_worker_processes():
    env, _ = make("pufferlib::CartPole-v1", num_envs=2, backend="Multiprocessing", num_workers=2)
    processes = list(env._host.vecenv.processes)
    assert all(p.is_alive() for p in processes)
    env.close()
    assert not any(p.is_alive() for p in processes)


def test_bad_backend_and_worker_count_are_clear_errors():
    with pytest.raises(ValueError, match="backend must be one of"):
        make("pufferlib::CartPole-v1", backend="Ray")
    with pytest.raises(ValueError, match="must be positive and divide num_envs=4"):
        make("pufferlib::CartPole-v1", num_envs=4, backend="Multiprocessing", num_workers=3)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_default_workers_count_only_the_cores_this_process_may_use():
    """A process allowed one core gets one worker, whatever the machine has.

    Run in a child process whose CPU affinity is really narrowed to one core:
    counting the machine's cores there would start busy-waiting workers that
    outnumber the usable cores, where PufferLib's rate collapses.
    """
    script = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from memorax_envs_callback.pufferlib import _default_workers, _usable_cores; "
        "print(_usable_cores(), _default_workers(8), _default_workers(7))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["1", "1", "1"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_the_wait_for_workers_naps_only_when_they_outnumber_the_free_cores():
    """Spinning while a worker needs the same core starves it; with cores to spare it is fastest.

    A child process narrowed to one core must nap (its one worker needs that
    core); this process spins when it has a core for the worker and one for itself.
    """
    script = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from memorax.envs import make; "
        "env, _ = make('pufferlib::CartPole-v1', num_envs=2, backend='Multiprocessing', "
        "num_workers=1); print(env._host._nap_while_waiting); env.close()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split()[-1] == "True"
    from memorax_envs_callback.pufferlib import _usable_cores

    env, _ = make("pufferlib::CartPole-v1", num_envs=2, backend="Multiprocessing", num_workers=1)
    try:
        assert env._host._nap_while_waiting == (_usable_cores() < 2)
    finally:
        env.close()
