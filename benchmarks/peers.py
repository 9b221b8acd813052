"""Memorax's off-policy agents against rejax's: env steps per second and return, same settings.

DQN and PQN on gymnax CartPole-v1, SAC on gymnax Pendulum-v1, one seed each,
MLP 64 x 64 (tanh; PQN: rejax's fixed Dense-LayerNorm-ReLU network in both), the
settings below (:data:`CASES`) written once for both libraries. Each case
compiles Memorax's ``train`` here and rejax's in a worker process under
rejax's own interpreter (``--rejax-python``; see ``rejax_worker.py`` for the
environment), alternates timed calls of the two compiled programs for
``--rounds`` rounds, then evaluates the last trained state of each (Memorax:
16 episodes per env copy with its deterministic policy; rejax: its own
128-episode evaluation).

    .venv/bin/python benchmarks/peers.py --rejax-python /tmp/peers/bin/python

Known differences that remain: rejax counts its target-update interval in env
steps (set here to Memorax's interval in gradient steps times the env steps
per gradient step), fills its buffer with uniform actions before learning,
and initialises its state inside ``train`` (Memorax's ``init`` is outside the
timed call).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import flax.linen as nn
import jax
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rejax_worker

from memorax import make
from memorax.algorithms import DQN, PQN, SAC, DQNConfig, PQNConfig, SACConfig
from memorax.cli.agents import build_q_network, build_sac_networks
from memorax.networks import Dense, DiscreteQNetwork, FeatureExtractor, LayerNorm, Network

HIDDEN = 64


@dataclass(frozen=True)
class Case:
    """One agent and task, in both libraries' terms."""

    name: str
    env_id: str
    steps: int
    memorax: dict[str, Any]
    rejax_algo: str
    rejax: dict[str, Any] = field(default_factory=dict)


CASES = (
    Case(
        "DQN",
        "CartPole-v1",
        100_000,
        # 8 env copies, 1 step each, then 1 gradient step on 64 transitions.
        dict(
            num_envs=8,
            batch_size=64,
            buffer_size=100_000,
            learning_starts=1_000,
            target_update_interval=500,
            epsilon_decay_steps=10_000,
            max_grad_norm=10.0,
        ),
        "dqn",
        dict(
            num_envs=8,
            batch_size=64,
            buffer_size=100_000,
            fill_buffer=1_000,
            num_epochs=1,
            target_update_freq=500 * 8,
            polyak=0.0,
            exploration_fraction=0.1,
            eps_end=0.05,
            max_grad_norm=10.0,
            learning_rate=1e-3,
            ddqn=True,
        ),
    ),
    Case(
        "PQN",
        "CartPole-v1",
        200_000,
        # 32 env copies x 16 steps, 4 epochs x 4 minibatches, Q(lambda) 0.65.
        dict(
            num_envs=32,
            num_steps=16,
            update_epochs=4,
            num_minibatches=4,
            q_lambda=0.65,
            epsilon_decay_steps=20_000,
            max_grad_norm=10.0,
        ),
        "pqn",
        dict(
            num_envs=32,
            num_steps=16,
            num_epochs=4,
            num_minibatches=4,
            td_lambda=0.65,
            exploration_fraction=0.1,
            eps_end=0.05,
            max_grad_norm=10.0,
            learning_rate=1e-3,
        ),
    ),
    Case(
        "SAC",
        "Pendulum-v1",
        40_000,
        # 8 env copies, 1 step each, then 1 gradient step on 256 transitions.
        dict(num_envs=8, batch_size=256, buffer_size=100_000, learning_starts=5_000, tau=0.005),
        "sac",
        dict(
            num_envs=8,
            batch_size=256,
            buffer_size=100_000,
            fill_buffer=5_000,
            num_epochs=1,
            polyak=0.995,
            learning_rate=1e-3,
        ),
    ),
)


def memorax_agent(case: Case):
    """Memorax's agent for ``case``, with the CLI's networks and Adam 1e-3."""
    env, params = make(f"gymnax::{case.env_id}", num_envs=case.memorax["num_envs"])
    if case.name == "SAC":
        actor, critic = build_sac_networks(env, "mlp", HIDDEN)
        config = SACConfig(**case.memorax)
        return SAC(config, env, params, actor, critic, optax.adam(1e-3), optax.adam(1e-3))
    if case.name == "DQN":
        network = build_q_network(env, "mlp", HIDDEN)
        return DQN(DQNConfig(**case.memorax), env, params, network, optax.adam(1e-3))

    # rejax's PQN network, layer for layer: Dense, LayerNorm, ReLU, twice.
    def block() -> nn.Module:
        return nn.Sequential([Dense(HIDDEN), LayerNorm(), nn.relu])

    network = Network(FeatureExtractor(block()), block(), DiscreteQNetwork(2))
    return PQN(PQNConfig(**case.memorax), env, params, network, optax.adam(1e-3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rejax-python", required=True, help="an interpreter with rejax")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default="DQN,PQN,SAC")
    args = parser.parse_args()
    print(f"jax {jax.__version__}; {args.rounds} rounds; load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| agent | env | env steps | library | compile (s) | median env steps/s | "
          "Memorax / rejax | mean return |")  # fmt: skip
    print("|---|---|---:|---|---:|---:|---:|---:|")
    for case in CASES:
        if case.name in args.cases.split(","):
            run_case(case, args.rejax_python, args.rounds)


def run_case(case: Case, rejax_python: str, rounds: int) -> None:
    """Compile both, alternate ``rounds`` timed calls, evaluate, print two table rows."""
    agent = memorax_agent(case)
    state = agent.init(jax.random.key(0))
    start = time.perf_counter()
    compiled = (
        jax.jit(agent.train, static_argnums=2).lower(jax.random.key(1), state, case.steps).compile()
    )
    compile_seconds = {"Memorax": time.perf_counter() - start}
    rejax_config = {"env": case.env_id, **case.rejax}
    # rejax's DQN and SAC networks are 64 x 64 already; its PQN fixes its own network
    # (LayerNorm, ReLU).
    if case.rejax_algo != "pqn":
        rejax_config["agent_kwargs"] = {"activation": "tanh"}
    worker = rejax_worker.Worker(rejax_python, case.rejax_algo, rejax_config, 1, case.steps)
    compile_seconds["rejax"] = worker.compile_seconds
    trained = []

    def memorax_run() -> float:
        begin = time.perf_counter()
        trained[:] = [jax.block_until_ready(compiled(jax.random.key(1), state))]
        return time.perf_counter() - begin

    rates: dict[str, list[float]] = {"Memorax": [], "rejax": []}
    memorax_run(), worker()  # warm calls
    for _ in range(rounds):
        rates["Memorax"].append(case.steps / memorax_run())
        rates["rejax"].append(case.steps / worker())
    evaluated = agent.evaluate(jax.random.key(2), trained[0], num_episodes=16)
    returns = {
        "Memorax": float(np.nanmean(np.asarray(evaluated.evaluation.returns))),
        "rejax": worker.mean_return(),
    }
    worker.close()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name in ("Memorax", "rejax"):
        ratio = f"{medians['Memorax'] / medians['rejax']:.2f}" if name == "Memorax" else ""
        print(f"| {case.name} | {case.env_id} | {case.steps:,} | {name} | "
              f"{compile_seconds[name]:.1f} | {medians[name]:,.0f} | {ratio} | "
              f"{returns[name]:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
