"""R2D2 with a GRU remembers a bit for 10 steps: bsuite's MemoryChain in gymnax.

MemoryChain shows a +-1 context only on an episode's first step and pays
+1 (or -1) on its last step for naming it, so a memoryless agent scores 0 on
average and a perfect one 1. The R2D2 agent replays sequences from the GRU
carries it stored while acting, burns in a few steps, learns n-step
double-Q targets on rescaled values and samples sequences by priority
(``eta * max |td| + (1 - eta) * mean |td|``). Two seeds train at once under
``jax.vmap``; the script prints and returns the greedy policy's mean return.

Needs: ``pip install "memorax-envs-jax[gymnax]"``

Run: ``python examples/r2d2_memory_chain.py [--num-steps 65536] [--seed 0]``
"""

from __future__ import annotations

import argparse
import time

import flax.linen as nn
import jax
import numpy as np
import optax

from memorax.algorithms import R2D2, R2D2Config
from memorax.envs import make
from memorax.networks import GRU, MLP, DiscreteQNetwork, FeatureExtractor, Network

MEMORY_LENGTH, NUM_ENVS, NUM_SEEDS = 10, 16, 2


def build_agent() -> R2D2:
    """A GRU Q-network and R2D2 settings sized for the 11-step episodes."""
    env, env_params = make(
        "gymnax::MemoryChain-bsuite", num_envs=NUM_ENVS, memory_length=MEMORY_LENGTH
    )
    network = Network(
        FeatureExtractor(MLP((32,), activation=nn.tanh)), GRU(32), DiscreteQNetwork(2)
    )
    # 16 learned steps hold a whole 11-step episode in most sampled sequences.
    config = R2D2Config(
        num_envs=NUM_ENVS, num_steps=8, gradient_steps=2, batch_size=32, buffer_size=8_000,
        learning_starts=1_000, gamma=0.99, n_step=3, target_update_interval=100,
        epsilon_end=0.05, epsilon_decay_steps=15_000, sequence_length=16, burn_in_length=4,
    )  # fmt: skip
    return R2D2(config, env, env_params, network, optax.adam(1e-3))


def main(argv: list[str] | None = None) -> float:
    """Train ``NUM_SEEDS`` seeds, evaluate greedily, print and return the mean return."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-steps", type=int, default=65_536, help="env steps per seed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    agent = build_agent()
    init_key, train_key, eval_key = jax.random.split(jax.random.key(args.seed), 3)
    start = time.perf_counter()
    states = jax.vmap(agent.init)(jax.random.split(init_key, NUM_SEEDS))
    states = jax.vmap(agent.train, in_axes=(0, 0, None))(
        jax.random.split(train_key, NUM_SEEDS), states, args.num_steps
    )
    states = jax.vmap(lambda key, state: agent.evaluate(key, state, num_episodes=8))(
        jax.random.split(eval_key, NUM_SEEDS), states
    )
    returns = np.nanmean(np.asarray(states.evaluation.returns).reshape(NUM_SEEDS, -1), axis=1)
    seconds = time.perf_counter() - start
    mean = float(returns.mean())
    print(
        f"R2D2 + GRU, MemoryChain (memory length {MEMORY_LENGTH}), {args.num_steps:,d} env "
        f"steps x {NUM_SEEDS} seeds: mean greedy return {mean:.2f} (per seed "
        f"{np.round(returns, 2).tolist()}; a memoryless agent scores 0, a perfect one 1), "
        f"{seconds:.0f} s, {NUM_SEEDS * args.num_steps / seconds:,.0f} env steps/s"
    )
    return mean


if __name__ == "__main__":
    main()
