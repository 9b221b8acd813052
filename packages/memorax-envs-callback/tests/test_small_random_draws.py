"""Small random draws beside the bridge: straight-line code, the same bits, no thread hop."""

from __future__ import annotations

import subprocess
import sys
import threading

import jax
import numpy as np

from memorax.envs import make
from memorax_envs_callback import small_random_draws

NUM_ENVS = 8

# Draws computed by JAX's own CPU lowering, in a process that never imports the bridge.
REFERENCE = """
import jax, numpy as np
key = jax.random.key(3)
draws = [jax.random.key_data(jax.random.split(key)), jax.random.randint(key, (8,), 0, 5),
         jax.random.uniform(key, (4096,))]
np.savez(__import__("sys").argv[1], *[np.asarray(d) for d in draws])
"""


def _hlo(function, *args) -> str:
    return jax.jit(function).lower(*args).compile().as_text()


def test_importing_the_bridge_lowers_small_draws_without_a_loop():
    assert small_random_draws.installed()
    key = jax.random.key(0)
    small = _hlo(lambda key: jax.random.randint(key, (NUM_ENVS,), 0, 2), key)
    assert " while(" not in small, "a small draw still lowers to a loop"
    # Large draws keep JAX's compact loop, so their compile time does not grow.
    large = _hlo(lambda key: jax.random.uniform(key, (4096,)), key)
    assert " while(" in large


def test_small_and_large_draws_give_the_bits_of_jax_s_own_lowering(tmp_path):
    reference = tmp_path / "reference.npz"
    subprocess.run([sys.executable, "-c", REFERENCE, str(reference)], check=True)
    assert "memorax_envs_callback" in sys.modules
    key = jax.random.key(3)
    draws = [
        jax.random.key_data(jax.random.split(key)),
        jax.random.randint(key, (8,), 0, 5),
        jax.random.uniform(key, (4096,)),
    ]
    with np.load(reference) as expected:
        for index, draw in enumerate(draws):
            np.testing.assert_array_equal(np.asarray(draw), expected[f"arr_{index}"])


def test_actions_drawn_in_the_loop_step_the_host_on_the_calling_thread():
    """With the draws as loops, XLA ran them beside the host call, which then ran on a
    worker thread (about 70 us more per step); actions read from the scan's inputs
    never moved. Both now step on the caller's thread."""
    env, params = make("gymnasium::CartPole-v1", num_envs=NUM_ENVS)
    try:
        vector_env = env._host.env
        step = vector_env.step
        threads: list[str] = []

        def recording_step(action):
            threads.append(threading.current_thread().name)
            return step(action)

        vector_env.step = recording_step

        @jax.jit
        def run(state, key):
            def one(carry, _):
                state, key = carry
                key, draw = jax.random.split(key)
                action = jax.random.randint(draw, (NUM_ENVS,), 0, 2)
                result = env.step(draw, state, action, params)
                return (result.state, key), result.reward

            return jax.lax.scan(one, (state, key), None, length=20)

        _, state = env.reset(jax.random.key(0), params)
        _, rewards = jax.block_until_ready(run(state, jax.random.key(1)))
        assert rewards.shape == (20, NUM_ENVS)
        assert threads == [threading.current_thread().name] * 20
    finally:
        env.close()
