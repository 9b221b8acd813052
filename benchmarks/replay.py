"""Replay agents' speed against replay capacity: env steps per second at 10k, 100k and 1M.

Each replay agent trains with its config's defaults for the loop (1 step per
env copy, then 1 gradient step per iteration, the case where a per-iteration
cost shows most) on 8 env copies, MLP 64 x 64 (R2D2: a GRU(64) torso,
prioritised replay), on gymnax CartPole-v1 (SAC: Pendulum-v1). A warm-up call
fills the buffer past ``learning_starts`` and compiles; the timed call is the
same compiled program. The goal (issue 21): 1M within 0.85 of 10k, i.e.
inserting and sampling do not depend on capacity.

    .venv/bin/python benchmarks/replay.py                         # every agent, 10k 100k 1M
    .venv/bin/python benchmarks/replay.py --agents dqn --capacities 10000,1000000 --rounds 3

``--rounds`` repeats the whole sweep (capacities interleaved) and reports the
median rate per row, because this VM's speed drifts within minutes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import optax

from memorax import make
from memorax.algorithms import DQN, R2D2, SAC, DQNConfig, R2D2Config, SACConfig
from memorax.cli.agents import build_q_network, build_sac_networks

AGENTS = ("dqn", "r2d2", "sac")
NUM_ENVS = 8


def build(name: str, capacity: int):
    """The agent ``name`` with ``capacity`` replay steps (all env copies together), with the
    networks the CLI builds (MLP 64 x 64; R2D2 a GRU(64) torso)."""
    if name == "sac":
        env, params = make("gymnax::Pendulum-v1", num_envs=NUM_ENVS)
        actor, critic = build_sac_networks(env, "mlp", 64)
        config = SACConfig(num_envs=NUM_ENVS, buffer_size=capacity)
        return SAC(config, env, params, actor, critic, optax.adam(3e-4), optax.adam(3e-4))
    env, params = make("gymnax::CartPole-v1", num_envs=NUM_ENVS)
    if name == "dqn":
        network = build_q_network(env, "mlp", 64)
        return DQN(
            DQNConfig(num_envs=NUM_ENVS, buffer_size=capacity),
            env,
            params,
            network,
            optax.adam(1e-3),
        )
    network = build_q_network(env, "gru", 64)
    config = R2D2Config(num_envs=NUM_ENVS, buffer_size=capacity)
    return R2D2(config, env, params, network, optax.adam(1e-3))


def measure(name: str, capacity: int, steps: int) -> tuple[float, float]:
    """``(compile and warm-up seconds, env steps per second of the timed call)``."""
    agent = build(name, capacity)
    state = agent.init(jax.random.key(0))
    start = time.perf_counter()
    # Past learning_starts (1,000 env steps by default), so the timed call learns.
    state = jax.block_until_ready(agent.train(jax.random.key(1), state, steps))
    warm = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(agent.train(jax.random.key(2), state, steps))
    return warm, steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default=",".join(AGENTS), help="agents, comma separated")
    parser.add_argument("--capacities", default="10000,100000,1000000")
    parser.add_argument("--steps", type=int, default=16_384, help="env steps per timed call")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    agents = args.agents.split(",")
    unknown = set(agents) - set(AGENTS)
    if unknown:
        parser.error(f"unknown agents {sorted(unknown)}; choose from {', '.join(AGENTS)}")
    capacities = [int(c) for c in args.capacities.split(",")]
    rates: dict[tuple[str, int], list[float]] = {}
    for round_index in range(args.rounds):
        for name in agents:
            for capacity in capacities:
                warm, rate = measure(name, capacity, args.steps)
                rates.setdefault((name, capacity), []).append(rate)
                print(
                    f"round {round_index + 1} {name} capacity={capacity:,}: "
                    f"{rate:,.0f} env steps/s (compile and warm-up {warm:.1f} s)",
                    flush=True,
                )
    print(f"\n| agent | capacity | env steps/s (median of {args.rounds}) | x smallest capacity |")
    print("|---|---:|---:|---:|")
    for name in agents:
        base = statistics.median(rates[(name, capacities[0])])
        for capacity in capacities:
            rate = statistics.median(rates[(name, capacity)])
            print(f"| {name.upper()} | {capacity:,} | {rate:,.0f} | {rate / base:.2f} |")


if __name__ == "__main__":
    main()
