"""PQN on CartPole vectorized by PufferLib, a CPU env bridged into jitted JAX.

PQN (parallelised Q-learning) needs no replay buffer and no target network:
layer norm in the Q-network keeps it stable. The env runs on the host
through PufferLib's Serial vector env; training is still one jitted
function. A callback env is one real environment, so evaluation uses a
second one (evaluating on the training env would reset its episodes).

Needs: ``pip install "memorax-envs-callback[pufferlib]"``

Run: ``python examples/pqn_pufferlib.py [--num-steps 102400] [--seed 0]``
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import optax

from memorax.algorithms import PQN, PQNConfig
from memorax.envs import make
from memorax.networks import Dense, DiscreteQNetwork, FeatureExtractor, LayerNorm, Network

NUM_ENVS, ROLLOUT = 32, 16


def layer_norm_block(width: int) -> nn.Module:
    """Dense -> LayerNorm -> ReLU, the normalisation PQN relies on."""
    return nn.Sequential([Dense(width), LayerNorm(), nn.relu])


def main(argv: list[str] | None = None) -> float:
    """Trains one seed and returns its mean greedy evaluation return."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-steps", type=int, default=102_400, help="env steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    env, env_params = make("pufferlib::CartPole-v1", num_envs=NUM_ENVS)
    eval_env, _ = make("pufferlib::CartPole-v1", num_envs=8)
    num_actions = env.action_space.n
    q_network = Network(
        FeatureExtractor(layer_norm_block(64)), layer_norm_block(64), DiscreteQNetwork(num_actions)
    )
    config = PQNConfig(
        num_envs=NUM_ENVS,
        num_steps=ROLLOUT,
        q_lambda=0.8,
        num_minibatches=8,
        epsilon_decay_steps=30_000,
    )
    agent = PQN(config, env, env_params, q_network, optax.adam(5e-4))

    init_key, train_key, eval_key = jax.random.split(jax.random.key(args.seed), 3)
    with env, eval_env:
        state = agent.train(train_key, agent.init(init_key), num_steps=args.num_steps)
        state = agent.evaluate(eval_key, state, env=eval_env)

    mean_return = float(state.evaluation.mean_return)
    print(f"mean evaluation return: {mean_return:.1f}")
    return mean_return


if __name__ == "__main__":
    main()
