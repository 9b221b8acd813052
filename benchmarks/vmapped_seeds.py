"""Seeds on a callback env: one ``jax.vmap`` over S seeds against S runs one after another.

For S = 1, 4, 16 seeds of 8 env copies: the env steps per second of S seeds
trained (or stepped) in one vmapped program, and of the same S seeds run one
after another with the program compiled for one seed (compilation outside
the timing on both sides; a fresh ``init``/reset before each timed call).

Cases: PPO (8 x 128 steps, MLP 64 x 64) and DQN (a gradient step of 64 after
every step of the 8 copies) on gymnasium's CartPole-v1, and a
random-action rollout (actions drawn in the loop) on gymnasium's CartPole-v1
and ALE Pong, which is the host envs' own cost with no learning to batch.
It also reports how much the resident memory grew while the vmapped run's
host envs were built and its program compiled.

    .venv/bin/python benchmarks/vmapped_seeds.py
    .venv/bin/python benchmarks/vmapped_seeds.py --seeds 1 4 --cases ppo-cartpole
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import optax
import psutil

from memorax import make
from memorax.algorithms import DQN, PPO, DQNConfig, PPOConfig
from memorax.cli.agents import build_actor_critic, build_q_network

NUM_ENVS = 8


def training_case(
    env_id: str, steps: int, build_agent: Callable[[Any, Any], Any]
) -> Callable[[int], tuple[Callable, Callable, Any]]:
    """``build(seeds)`` -> (fresh input maker, compiled program, env) for training the agent
    ``build_agent(env, env_params)`` makes, one seed plainly or S seeds under one vmap."""

    def build(seeds: int):
        env, params = make(env_id, num_envs=NUM_ENVS)
        agent = build_agent(env, params)
        init, train = agent.init, agent.train
        if seeds > 1:
            init, train = jax.vmap(init), jax.vmap(train, in_axes=(0, 0, None))
        init = jax.jit(init)
        keys = _keys(seeds, 1)

        def fresh():
            return (keys, init(_keys(seeds, 0)))

        compiled = jax.jit(train, static_argnums=2).lower(*fresh(), steps).compile()
        return fresh, compiled, env

    return build


def ppo_agent(env: Any, params: Any) -> PPO:
    """PPO, 8 x 128 steps, MLP 64 x 64."""
    actor, critic = build_actor_critic(env, "mlp", 64)
    optimizer = optax.adam(2.5e-4, eps=1e-5)
    return PPO(PPOConfig(num_steps=128), env, params, actor, critic, optimizer, optimizer)


def dqn_agent(env: Any, params: Any) -> DQN:
    """DQN: 8 copies x 1 step, then 1 gradient step of 64 (the settings of ``sb3_compare.py``)."""
    config = DQNConfig(learning_starts=1_000, epsilon_decay_steps=5_000, double_q=False)
    return DQN(config, env, params, build_q_network(env, "mlp", 64), optax.adam(1e-3))


def rollout_case(env_id: str, steps: int) -> Callable[[int], tuple[Callable, Callable, Any]]:
    """``build(seeds)`` -> (fresh input maker, compiled program, env) for a random rollout."""

    def build(seeds: int):
        env, _ = make(env_id, num_envs=NUM_ENVS)
        n = env.action_space.n

        def rollout(key):
            _, state = env.reset(key, None)

            def one(state, step_key):
                action = jax.random.randint(step_key, (NUM_ENVS,), 0, n)
                result = env.step(step_key, state, action, None)
                return result.state, result.reward

            return jax.lax.scan(one, state, jax.random.split(key, steps // NUM_ENVS))[1].sum()

        program = jax.vmap(rollout) if seeds > 1 else rollout
        keys = _keys(seeds, 0)

        def fresh():
            return (keys,)

        return fresh, jax.jit(program).lower(keys).compile(), env

    return build


def _keys(seeds: int, stream: int) -> jax.Array:
    keys = jax.random.split(jax.random.key(stream), max(seeds, 1))
    return keys if seeds > 1 else keys[0]


# name: (label, builder, env steps per seed, all copies counted)
CASES = {
    "ppo-cartpole": (
        "PPO, gymnasium CartPole-v1",
        training_case("gymnasium::CartPole-v1", 32_768, ppo_agent),
        32_768,
    ),
    "dqn-cartpole": (
        "DQN, gymnasium CartPole-v1",
        training_case("gymnasium::CartPole-v1", 16_384, dqn_agent),
        16_384,
    ),
    "rollout-cartpole": (
        "random rollout, gymnasium CartPole-v1",
        rollout_case("gymnasium::CartPole-v1", 32_768),
        32_768,
    ),
    "rollout-pong": ("random rollout, ALE Pong", rollout_case("ale::Pong", 2_048), 2_048),
}


def timed(fresh: Callable, program: Callable) -> float:
    """Seconds of one call of ``program`` on fresh inputs (made outside the timing)."""
    inputs = fresh()
    start = time.perf_counter()
    jax.block_until_ready(program(*inputs))
    return time.perf_counter() - start


def measure(build: Callable, seeds: int, steps_per_seed: int, rounds: int) -> dict[str, float]:
    """Median env steps/s of the vmapped run and of the seeds one after another."""
    memory = psutil.Process().memory_info().rss
    fresh, vmapped, env = build(seeds)
    extra_mb = (psutil.Process().memory_info().rss - memory) / 2**20
    copies = getattr(env, "num_host_copies", 1)
    single_fresh, single, single_env = build(1)
    together, apart = [], []
    total = seeds * steps_per_seed
    for _ in range(rounds):
        together.append(total / timed(fresh, vmapped))
        apart.append(total / sum(timed(single_fresh, single) for _ in range(seeds)))
    env.close()
    single_env.close()
    together.sort(), apart.sort()
    return {
        "vmapped": together[len(together) // 2],
        "sequential": apart[len(apart) // 2],
        "host_copies": copies,
        "megabytes": extra_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"jax {jax.__version__}; {NUM_ENVS} envs per seed; {args.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| case | seeds | vmapped env steps/s | one after another | vmapped / sequential | "
          "host envs | RSS growth, building and compiling (MB) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.cases.split(","):
        label, build, per_seed = CASES[name]
        for seeds in args.seeds:
            result = measure(build, seeds, per_seed, args.rounds)
            print(f"| {label} | {seeds} | {result['vmapped']:,.0f} | {result['sequential']:,.0f} "
                  f"| {result['vmapped'] / result['sequential']:.2f} | "
                  f"{result['host_copies']} | {result['megabytes']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
