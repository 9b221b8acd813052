"""Soft actor-critic swings up gymnax's Pendulum-v1.

Shows the continuous SAC agent end to end: a squashed-Gaussian actor whose
actions are rescaled to the pendulum's torque bounds, twin critics with
Polyak-averaged targets and a learned entropy temperature. It trains for
``--num-steps`` env steps (all env copies counted), then evaluates the
deterministic policy and prints the mean evaluation return (about -1200 for
a random policy, above -250 for a solved pendulum).

    .venv/bin/python examples/sac_pendulum.py                    # 100k steps
    .venv/bin/python examples/sac_pendulum.py --num-steps 20000 --seed 1
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import optax

from memorax.algorithms import SAC, SACConfig
from memorax.envs import make
from memorax.networks import (
    MLP,
    FeatureExtractor,
    Network,
    SquashedGaussian,
    TwinContinuousQNetwork,
)

NUM_ENVS = 4


def build_agent(num_steps: int) -> SAC:
    """SAC for Pendulum: 4 env copies, one gradient step per env step, 64-unit MLPs.

    The settings of ``benchmarks/learning.py``'s sac-pendulum run (4 seeds, 100k
    steps: -175 on average). 256-unit networks are about 16x the work per step,
    which a CPU feels.
    """
    env, env_params = make("gymnax::Pendulum-v1", num_envs=NUM_ENVS)
    config = SACConfig(
        num_envs=NUM_ENVS,
        gradient_steps=NUM_ENVS,
        batch_size=128,
        buffer_size=max(num_steps, 1_000),
        learning_starts=min(1_000, num_steps // 2),
    )
    actor = Network(FeatureExtractor(MLP((64,))), MLP((64,)), SquashedGaussian(1))
    critic = Network(FeatureExtractor(MLP((64,))), MLP((64,)), TwinContinuousQNetwork((64,)))
    return SAC(config, env, env_params, actor, critic, optax.adam(1e-3), optax.adam(1e-3))


def main(argv: list[str] | None = None) -> float:
    """Train, evaluate and return the mean evaluation return."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-steps", type=int, default=100_000, help="env steps to train")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.num_steps < 2 * NUM_ENVS:
        parser.error(f"--num-steps must be at least {2 * NUM_ENVS}")
    agent = build_agent(args.num_steps)
    init_key, train_key, eval_key = jax.random.split(jax.random.key(args.seed), 3)
    start = time.perf_counter()
    state = agent.train(train_key, agent.init(init_key), num_steps=args.num_steps)
    jax.block_until_ready(state)
    wall = time.perf_counter() - start
    state = agent.evaluate(eval_key, state, num_episodes=4)
    mean_return = float(np.nanmean(np.asarray(state.evaluation.returns)))
    steps = int(state.env_steps)
    print(f"SAC on gymnax::Pendulum-v1: {steps:,d} env steps in {wall:.0f} s "
          f"({steps / wall:,.0f} steps/s, compile included); "
          f"mean evaluation return {mean_return:.1f}")  # fmt: skip
    return mean_return


if __name__ == "__main__":
    main()
