"""PPO on Craftax-Classic with symbolic observations, entirely on the device.

Craftax-Classic is a 2D Minecraft-like survival game written in JAX: the
agent gets a reward for each of 22 achievements unlocked (collect wood,
place a table, make a pickaxe, eat, drink, ...) and loses health it cannot
see coming. The symbolic observation is a flat float vector, so a plain MLP
actor and critic do. Being JAX-native, env and agent compile into one program.

Needs: ``pip install "memorax-envs-jax[craftax]"``

Run: ``python examples/ppo_craftax.py [--num-steps 1024000] [--seed 0]``
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import optax

from memorax.algorithms import PPO, PPOConfig
from memorax.envs import make
from memorax.networks import MLP, Categorical, FeatureExtractor, Network, VNetwork

NUM_ENVS, ROLLOUT = 32, 64


def network(head: nn.Module) -> Network:
    """A two-layer tanh MLP with ``head`` on top."""
    return Network(
        FeatureExtractor(MLP((128,), activation=nn.tanh)), MLP((128,), activation=nn.tanh), head
    )


def main(argv: list[str] | None = None) -> float:
    """Trains one seed and returns its mean evaluation return (achievements unlocked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-steps", type=int, default=1_024_000, help="env steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    env, env_params = make("craftax::Craftax-Classic-Symbolic-v1", num_envs=NUM_ENVS)
    num_actions = env.action_space.n
    config = PPOConfig(num_envs=NUM_ENVS, num_steps=ROLLOUT, gae_lambda=0.8)
    actor, critic = network(Categorical(num_actions)), network(VNetwork())
    optimizer = optax.adam(2e-4, eps=1e-5)
    agent = PPO(config, env, env_params, actor, critic, optimizer, optimizer)

    init_key, train_key, eval_key = jax.random.split(jax.random.key(args.seed), 3)
    state = agent.train(train_key, agent.init(init_key), num_steps=args.num_steps)
    state = agent.evaluate(eval_key, state)

    mean_return = float(state.evaluation.mean_return)
    print(f"mean evaluation return: {mean_return:.2f}")
    return mean_return


if __name__ == "__main__":
    main()
