"""PPO with a GRU memory on a partially observed navix grid world.

The agent sees only the 7x7 cells in front of it (navix's first-person
symbolic view) in a 6x6 room with a random start and goal, so it has to
remember where it has already looked. The GRU also sees the previous action
and reward. Being JAX-native, four seeds train at once under ``jax.vmap``.

Needs: ``pip install "memorax-envs-jax[navix]"``

Run: ``python examples/ppo_gru_navix.py [--num-steps 512000] [--seed 0]``
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import optax

from memorax.algorithms import PPO, PPOConfig
from memorax.envs import make
from memorax.networks import GRU, MLP, Categorical, FeatureExtractor, Network, OneHot, VNetwork

NUM_ENVS, ROLLOUT, NUM_SEEDS = 16, 64, 4


def network(num_actions: int, head: nn.Module) -> Network:
    """Observation, previous action and reward -> GRU -> ``head``."""
    extractor = FeatureExtractor(
        MLP((64,), activation=nn.tanh),
        action_extractor=OneHot(num_actions),
        reward_extractor=MLP((8,), activation=nn.tanh),
    )
    return Network(extractor, GRU(64), head)


def main(argv: list[str] | None = None) -> float:
    """Trains ``NUM_SEEDS`` seeds and returns their mean greedy evaluation return."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-steps", type=int, default=512_000, help="env steps per seed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    env, env_params = make(
        "navix::Navix-Empty-Random-6x6-v0",
        num_envs=NUM_ENVS,
        observation_fn="symbolic_first_person",
    )
    num_actions = env.action_space.n
    config = PPOConfig(num_envs=NUM_ENVS, num_steps=ROLLOUT, num_minibatches=4)
    actor = network(num_actions, Categorical(num_actions))
    critic = network(num_actions, VNetwork())
    optimizer = optax.adam(3e-4, eps=1e-5)
    agent = PPO(config, env, env_params, actor, critic, optimizer, optimizer)

    init_key, train_key, eval_key = jax.random.split(jax.random.key(args.seed), 3)
    states = jax.vmap(agent.init)(jax.random.split(init_key, NUM_SEEDS))
    train = jax.vmap(agent.train, in_axes=(0, 0, None))
    states = train(jax.random.split(train_key, NUM_SEEDS), states, args.num_steps)
    states = jax.vmap(agent.evaluate)(jax.random.split(eval_key, NUM_SEEDS), states)

    per_seed = states.evaluation.mean_return
    print(f"evaluation return per seed: {per_seed}")
    mean_return = float(per_seed.mean())
    print(f"mean evaluation return: {mean_return:.3f}")
    return mean_return


if __name__ == "__main__":
    main()
