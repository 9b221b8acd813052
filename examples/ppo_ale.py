"""PPO with a convolutional network on Atari Pong, through ale-py's vector env.

ale-py runs the emulators and the standard preprocessing in C++ threads; the
bridge hands JAX observations of shape ``[num_envs, 84, 84, 4]`` uint8 (four
stacked grayscale frames as channels), the NHWC layout ``flax.linen.Conv``
expects. Evaluation uses a second env: a callback env is one real
environment, so evaluating on the training env would reset its episodes.
The default budget takes hours on a CPU; a GPU runs the networks much faster,
the emulators stay on the CPU.

Needs: ``pip install "memorax-envs-callback[ale]"``

Run: ``python examples/ppo_ale.py [--num-steps 5120000] [--seed 0]``
"""

from __future__ import annotations

import argparse
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from memorax.algorithms import PPO, PPOConfig
from memorax.envs import make
from memorax.networks import MLP, Categorical, FeatureExtractor, Network, PatchConv, VNetwork

NUM_ENVS, ROLLOUT = 8, 128


class AtariCNN(nn.Module):
    """The Nature-DQN convolutions: ``[B, T, 84, 84, C] uint8 -> [B, T, 3136]``."""

    @nn.compact
    def __call__(self, frames: jax.Array) -> jax.Array:
        # XLA:CPU runs nn.Conv's gradients as naive loops inside the training
        # loop (about 15x slower); PatchConv has the same parameters and is
        # fast there. On a GPU nn.Conv (cuDNN) is faster.
        conv = PatchConv if jax.default_backend() == "cpu" else partial(nn.Conv, padding="VALID")
        x = frames.astype(jnp.float32) / 255.0
        for i, (features, size, stride) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
            x = nn.relu(conv(features, (size, size), strides=(stride, stride), name=f"conv{i}")(x))
        return jnp.reshape(x, (*x.shape[:2], -1))


def main(argv: list[str] | None = None) -> float:
    """Trains one seed and returns its mean evaluation return (a Pong score, -21 to 21)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-steps", type=int, default=5_120_000, help="agent steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    env, env_params = make("ale::Pong", num_envs=NUM_ENVS)
    eval_env, _ = make("ale::Pong", num_envs=4)
    num_actions = env.action_space.n
    config = PPOConfig(
        num_envs=NUM_ENVS, num_steps=ROLLOUT, clip_coefficient=0.1, entropy_coefficient=0.01
    )
    # PPO takes a separate actor and critic; each has its own CNN and dense layer.
    actor = Network(FeatureExtractor(AtariCNN()), MLP((512,)), Categorical(num_actions))
    critic = Network(FeatureExtractor(AtariCNN()), MLP((512,)), VNetwork())
    optimizer = optax.adam(2.5e-4, eps=1e-5)
    agent = PPO(config, env, env_params, actor, critic, optimizer, optimizer)

    init_key, train_key, eval_key = jax.random.split(jax.random.key(args.seed), 3)
    with env, eval_env:
        state = agent.train(train_key, agent.init(init_key), num_steps=args.num_steps)
        state = agent.evaluate(eval_key, state, env=eval_env)

    mean_return = float(state.evaluation.mean_return)
    print(f"mean evaluation return: {mean_return:.1f}")
    return mean_return


if __name__ == "__main__":
    main()
