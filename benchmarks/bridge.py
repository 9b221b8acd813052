"""Env steps per second of the callback bridge against its raw vector env.

For each backend the same host vector env is stepped with the same random
actions from a plain Python loop calling the library's vector env (the
limit) and through the bridge from a jitted ``lax.scan``, alternating over
five rounds; the ratio of the medians, bridge/raw, is the share of the raw
rate the bridge keeps.

    .venv/bin/python benchmarks/bridge.py            # about two minutes
    .venv/bin/python benchmarks/bridge.py --steps 0.5  # scale every step count
    .venv/bin/python benchmarks/bridge.py --only gymnasium
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
ROUNDS = 5


def raw_stepper(env) -> callable:
    """A function stepping the library's own vector env once with numpy actions."""
    host = env._host
    if hasattr(host, "vecenv"):  # PufferLib: its own send/recv, as its users call it
        import pufferlib.vector

        vecenv = host.vecenv

        def step(action):
            vecenv.send(action)
            vecenv.recv()
            if hasattr(vecenv, "processes"):
                # PufferLib's recv reads the workers' info messages but leaves them
                # flagged; the bridge's next reset would wait for them again.
                semaphores = vecenv.buf["semaphores"]
                semaphores[semaphores == pufferlib.vector.INFO] = pufferlib.vector.MAIN

        return step
    return host.env.step  # gymnasium and ale-py vector envs


def measure(env_id: str, steps: int, in_graph: bool = False, **kwargs) -> tuple[float, float]:
    """Median (raw, bridge) env steps per second over :data:`ROUNDS` alternating rounds.

    Alternating keeps a slow patch of a shared machine from landing on one
    side only; each bridge round starts from a fresh reset, since the raw
    loop moves the host env behind the bridge's back. ``in_graph``: the
    bridge's actions are drawn inside the loop (a key split and
    ``jax.random.randint`` per step, as epsilon-greedy acting does) and the
    raw loop draws its actions per step with numpy.
    """
    env, params = make(env_id, num_envs=NUM_ENVS, **kwargs)
    try:
        rng = np.random.default_rng(0)
        n = env.action_space.n
        per_round = max(8, steps // ROUNDS)
        actions = rng.integers(0, n, size=(per_round, NUM_ENVS), dtype=np.int32)

        @jax.jit
        def run(state, actions):
            def one(carry, action):
                state, key = carry
                if in_graph:
                    key, draw = jax.random.split(key)
                    action = jax.random.randint(draw, (NUM_ENVS,), 0, n)
                result = env.step(jax.random.key(0), state, action, params)
                return (result.state, key), result.reward

            return jax.lax.scan(one, (state, jax.random.key(1)), actions)

        device_actions = jnp.asarray(actions)
        _, state = env.reset(jax.random.key(0), params)
        jax.block_until_ready(run(state, device_actions))  # compile and warm up
        step = raw_stepper(env)
        raw_rates, bridge_rates = [], []
        for round_index in range(ROUNDS):
            _, state = env.reset(jax.random.key(round_index + 1), params)
            start = time.perf_counter()
            jax.block_until_ready(run(state, device_actions))
            bridge_rates.append(per_round * NUM_ENVS / (time.perf_counter() - start))
            start = time.perf_counter()
            if in_graph:
                for _ in range(per_round):
                    step(rng.integers(0, n, size=NUM_ENVS, dtype=np.int32))
            else:
                for action in actions:
                    step(action)
            raw_rates.append(per_round * NUM_ENVS / (time.perf_counter() - start))
        return float(np.median(raw_rates)), float(np.median(bridge_rates))
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, default=1.0, help="scale of every step count")
    parser.add_argument("--only", default="", help="run the cases whose label contains this")
    args = parser.parse_args()
    cases = [
        ("gymnasium CartPole-v1 (sync)", "gymnasium::CartPole-v1", 4000, {}),
        (
            "gymnasium CartPole-v1 (sync), actions drawn in the loop",
            "gymnasium::CartPole-v1",
            4000,
            {"in_graph": True},
        ),
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
        if args.only not in label:
            continue
        raw, bridge = measure(env_id, max(16, int(steps * args.steps)), **kwargs)
        print(f"| {label} | {raw:,.0f} | {bridge:,.0f} | {bridge / raw:.2f} |", flush=True)


if __name__ == "__main__":
    main()
