"""Memorax through the gymnasium bridge against Stable-Baselines3: env steps per second and return.

DQN and PPO on gymnasium's CartPole-v1, SAC on Pendulum-v1, 8 env copies,
one seed, the settings of :data:`CASES` written once for both libraries.
Memorax steps the copies through the callback bridge inside its compiled
``train``; SB3 (torch, CPU) steps them through its ``DummyVecEnv`` in a
worker process under its own interpreter (``--sb3-python``; see
``sb3_worker.py``). Each case compiles Memorax's ``train`` once, then
alternates timed calls (a fresh ``init`` each, outside the timing) with SB3
``learn`` calls of a fresh agent for ``--rounds`` rounds, then evaluates the
last trained agent of each (32 deterministic episodes on a separate env).

    .venv/bin/python benchmarks/sb3_compare.py --sb3-python /tmp/sb3/bin/python

Known differences that remain: the networks are both 64 x 64 but Memorax's
are the CLI's (its Q-network's first layer has layer norm and ReLU, as
:func:`memorax.cli.agents.build_q_network` builds it; SB3's are tanh MLPs),
SB3's DQN bootstraps with its target network alone (Memorax: double Q off
here too), and SB3's PPO has one optimiser for actor and critic (Memorax: one
each, same learning rate).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sb3_worker

from memorax import make
from memorax.algorithms import DQN, PPO, SAC, DQNConfig, PPOConfig, SACConfig
from memorax.cli.agents import build_actor_critic, build_q_network, build_sac_networks

HIDDEN = 64
NUM_ENVS = 8


@dataclass(frozen=True)
class Case:
    """One agent and task, in both libraries' terms."""

    name: str
    env_id: str
    steps: int
    learning_rate: float
    memorax: dict[str, Any]
    sb3: dict[str, Any]


CASES = (
    Case(
        "DQN",
        "CartPole-v1",
        50_000,
        1e-3,
        # 8 copies, 1 step each, then 1 gradient step on 64 transitions; target
        # copied every 500 gradient steps = 4,000 env steps; epsilon 1 -> 0.05 over 5,000.
        dict(
            batch_size=64,
            buffer_size=100_000,
            learning_starts=1_000,
            target_update_interval=500,
            epsilon_decay_steps=5_000,
            max_grad_norm=10.0,
            double_q=False,
        ),
        dict(
            learning_rate=1e-3,
            batch_size=64,
            buffer_size=100_000,
            learning_starts=1_000,
            train_freq=1,
            gradient_steps=1,
            target_update_interval=4_000,
            exploration_fraction=0.1,
            exploration_final_eps=0.05,
            max_grad_norm=10.0,
        ),
    ),
    Case(
        "PPO",
        "CartPole-v1",
        102_400,
        2.5e-4,
        # 8 copies x 128 steps, 4 epochs x 4 minibatches of 256.
        dict(num_steps=128, num_minibatches=4, update_epochs=4, entropy_coefficient=0.01),
        dict(
            learning_rate=2.5e-4,
            n_steps=128,
            batch_size=256,
            n_epochs=4,
            ent_coef=0.01,
            clip_range=0.2,
            gae_lambda=0.95,
            max_grad_norm=0.5,
        ),
    ),
    Case(
        "SAC",
        "Pendulum-v1",
        20_000,
        1e-3,
        # 8 copies, 1 step each, then 1 gradient step on 256 transitions.
        dict(batch_size=256, buffer_size=100_000, learning_starts=5_000, tau=0.005),
        dict(
            learning_rate=1e-3,
            batch_size=256,
            buffer_size=100_000,
            learning_starts=5_000,
            tau=0.005,
            train_freq=1,
            gradient_steps=1,
        ),
    ),
)


def memorax_agent(case: Case) -> Any:
    """Memorax's agent for ``case`` over ``NUM_ENVS`` gymnasium copies, with the CLI's networks."""
    env, params = make(f"gymnasium::{case.env_id}", num_envs=NUM_ENVS)
    rate = case.learning_rate
    if case.name == "DQN":
        network = build_q_network(env, "mlp", HIDDEN)
        return DQN(DQNConfig(**case.memorax), env, params, network, optax.adam(rate))
    if case.name == "PPO":
        actor, critic = build_actor_critic(env, "mlp", HIDDEN)
        optimizers = optax.adam(rate, eps=1e-5), optax.adam(rate, eps=1e-5)
        return PPO(PPOConfig(**case.memorax), env, params, actor, critic, *optimizers)
    actor, critic = build_sac_networks(env, "mlp", HIDDEN)
    config = SACConfig(**case.memorax)
    return SAC(config, env, params, actor, critic, optax.adam(rate), optax.adam(rate))


def run_case(case: Case, sb3_python: str, rounds: int, scale: float) -> None:
    """Compile, alternate ``rounds`` timed calls with SB3's, evaluate, print two table rows."""
    steps = max(NUM_ENVS, int(case.steps * scale))
    agent = memorax_agent(case)
    state = agent.init(jax.random.key(0))
    start = time.perf_counter()
    compiled = jax.jit(agent.train, static_argnums=2).lower(jax.random.key(1), state, steps)
    compiled = compiled.compile()
    compile_seconds = time.perf_counter() - start
    worker = sb3_worker.Worker(
        sb3_python, case.name.lower(), case.env_id, NUM_ENVS, steps, case.sb3
    )
    trained = []

    def memorax_run() -> float:
        # The host env behind a callback env is live: every run starts from a fresh init.
        fresh = agent.init(jax.random.key(0))
        begin = time.perf_counter()
        trained[:] = [jax.block_until_ready(compiled(jax.random.key(1), fresh))]
        return time.perf_counter() - begin

    rates: dict[str, list[float]] = {"Memorax": [], "SB3": []}
    for _ in range(rounds):
        rates["Memorax"].append(steps / memorax_run())
        rates["SB3"].append(steps / worker())
    eval_env, _ = make(f"gymnasium::{case.env_id}", num_envs=NUM_ENVS)
    evaluated = agent.evaluate(jax.random.key(2), trained[0], num_episodes=4, env=eval_env)
    returns = {
        "Memorax": float(np.nanmean(np.asarray(evaluated.evaluation.returns))),
        "SB3": worker.mean_return(),
    }
    worker.close()
    eval_env.close()
    agent.env.close()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name in ("Memorax", "SB3"):
        ratio = f"{medians['Memorax'] / medians['SB3']:.2f}" if name == "Memorax" else ""
        compile_text = f"{compile_seconds:.1f}" if name == "Memorax" else ""
        print(f"| {case.name} | {case.env_id} | {steps:,} | {name} | {compile_text} | "
              f"{medians[name]:,.0f} | {ratio} | {returns[name]:.1f} |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sb3-python", required=True, help="an interpreter with stable-baselines3")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default="DQN,PPO,SAC")
    parser.add_argument("--steps", type=float, default=1.0, help="scale of every step count")
    args = parser.parse_args()
    print(f"jax {jax.__version__}; {args.rounds} rounds; {NUM_ENVS} envs; load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| agent | env | env steps | library | compile (s) | median env steps/s | "
          "Memorax / SB3 | mean return |")  # fmt: skip
    print("|---|---|---:|---|---:|---:|---:|---:|")
    for case in CASES:
        if case.name in args.cases.split(","):
            run_case(case, args.sb3_python, args.rounds, args.steps)


if __name__ == "__main__":
    main()
