"""Env steps per second of the callback bridge against its raw vector env.

For each backend the same host vector env is stepped twice with the same
random actions: from a plain Python loop calling the library's vector env
(the limit), and through the bridge from a jitted ``lax.scan``. The ratio
bridge/raw is the share of the raw rate the bridge keeps.

    .venv/bin/python benchmarks/bridge.py            # about two minutes
    .venv/bin/python benchmarks/bridge.py --steps 0.5  # scale every step count
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from memorax.envs import make

NUM_ENVS = 8


def raw_stepper(env) -> callable:
    """A function stepping the library's own vector env once with numpy actions."""
    host = env._host
    if hasattr(host, "vecenv"):  # PufferLib: its own send/recv, as its users call it
        vecenv = host.vecenv

        def step(action):
            vecenv.send(action)
            vecenv.recv()

        return step
    return host.env.step  # gymnasium and ale-py vector envs


def measure(env_id: str, steps: int, **kwargs) -> tuple[float, float]:
    env, params = make(env_id, num_envs=NUM_ENVS, **kwargs)
    try:
        rng = np.random.default_rng(0)
        n = env.action_space.n
        actions = rng.integers(0, n, size=(steps, NUM_ENVS), dtype=np.int32)

        @jax.jit
        def run(state, actions):
            def one(state, action):
                result = env.step(jax.random.key(0), state, action, params)
                return result.state, result.reward

            return jax.lax.scan(one, state, actions)

        _, state = env.reset(jax.random.key(0), params)
        state, rewards = run(state, jnp.asarray(actions[:8]))  # compile
        jax.block_until_ready(rewards)
        device_actions = jnp.asarray(actions)
        start = time.perf_counter()
        state, rewards = run(state, device_actions)
        jax.block_until_ready(rewards)
        bridge = steps * NUM_ENVS / (time.perf_counter() - start)

        env.reset(jax.random.key(1), params)
        step = raw_stepper(env)
        start = time.perf_counter()
        for action in actions:
            step(action)
        raw = steps * NUM_ENVS / (time.perf_counter() - start)
        return raw, bridge
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, default=1.0, help="scale of every step count")
    args = parser.parse_args()
    cases = [
        ("gymnasium CartPole-v1 (sync)", "gymnasium::CartPole-v1", 4000, {}),
        ("ALE Pong", "ale::Pong", 400, {}),
        ("pufferlib CartPole-v1 Serial", "pufferlib::CartPole-v1", 4000, {"backend": "Serial"}),
        (
            "pufferlib CartPole-v1 Multiprocessing (default workers)",
            "pufferlib::CartPole-v1",
            1000,
            {"backend": "Multiprocessing"},
        ),
    ]
    print(
        f"machine: {platform.processor() or platform.machine()}, {platform.system()}, "
        f"jax {jax.__version__}, {NUM_ENVS} envs"
    )
    print("| env | raw env steps/s | bridge env steps/s | bridge/raw |")
    print("|---|---:|---:|---:|")
    for label, env_id, steps, kwargs in cases:
        raw, bridge = measure(env_id, max(16, int(steps * args.steps)), **kwargs)
        print(f"| {label} | {raw:,.0f} | {bridge:,.0f} | {bridge / raw:.2f} |", flush=True)


if __name__ == "__main__":
    main()
