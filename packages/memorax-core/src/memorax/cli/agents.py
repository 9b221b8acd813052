"""The agents and networks the CLI can build, by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import optax

from memorax.algorithms import DQN, PPO, PQN, DQNConfig, PPOConfig, PQNConfig
from memorax.envs import Box, Discrete, Environment
from memorax.networks import (
    MLP,
    SEQUENCE_MODELS,
    Categorical,
    DiscreteQNetwork,
    FeatureExtractor,
    Gaussian,
    Network,
    OneHot,
    VNetwork,
)

__all__ = ["ALGORITHMS", "TORSOS", "AlgorithmSpec", "build_actor_critic"]

TORSOS = ("mlp", *SEQUENCE_MODELS)
"""``--torso`` choices: a feed-forward MLP or any registered sequence model."""


@dataclass(frozen=True)
class AlgorithmSpec:
    """How the CLI builds one algorithm.

    Attributes:
        config_class: the frozen config dataclass (its fields become options).
        defaults: CLI defaults that differ from the config class's own.
        build: ``build(config, env, env_params, torso, hidden_size,
            learning_rate, metrics_callback) -> agent``.
    """

    config_class: type
    defaults: dict[str, Any]
    build: Callable[..., Any]

    def config_fields(self) -> list[dataclasses.Field]:
        """The config's fields, in declaration order."""
        return list(dataclasses.fields(self.config_class))


def build_actor_critic(env: Environment, torso: str, hidden_size: int) -> tuple[Network, Network]:
    """An actor and a critic for ``env``'s spaces with the named torso.

    Memory torsos also see the previous action and reward, which a memory
    agent needs to infer what it cannot observe.
    """
    if torso not in TORSOS:
        raise ValueError(f"Unknown torso {torso!r}; choose one of: {', '.join(TORSOS)}.")
    space = env.action_space
    if isinstance(space, Discrete):
        head: nn.Module = Categorical(space.n)
        action_extractor: nn.Module = OneHot(space.n)
    elif isinstance(space, Box) and len(space.shape) == 1:
        head = Gaussian(space.shape[0])
        action_extractor = MLP((hidden_size // 4,), activation=nn.tanh)
    else:
        raise ValueError(
            f"The CLI builds networks for Discrete and flat Box action spaces; {env.name} has "
            f"{space}. Build the networks yourself with memorax.networks."
        )

    def network(output: nn.Module) -> Network:
        observation = MLP((hidden_size,), activation=nn.tanh)
        if torso == "mlp":
            return Network(FeatureExtractor(observation), MLP((hidden_size,), nn.tanh), output)
        extractor = FeatureExtractor(
            observation,
            action_extractor=action_extractor,
            reward_extractor=MLP((8,), activation=nn.tanh),
        )
        return Network(extractor, SEQUENCE_MODELS[torso](hidden_size), output)

    return network(head), network(VNetwork())


def _build_ppo(
    config: PPOConfig,
    env: Environment,
    env_params: Any,
    torso: str,
    hidden_size: int,
    learning_rate: float,
    metrics_callback: Callable | None,
) -> PPO:
    actor, critic = build_actor_critic(env, torso, hidden_size)
    return PPO(
        config,
        env,
        env_params,
        actor,
        critic,
        optax.adam(learning_rate, eps=1e-5),
        optax.adam(learning_rate, eps=1e-5),
        metrics_callback=metrics_callback,
    )


def build_q_network(env: Environment, torso: str, hidden_size: int) -> Network:
    """A Q-network for ``env``'s discrete actions with the named torso and layer norm.

    Layer norm after the torso's input layer keeps Q-learning without a
    target network (PQN) stable.
    """
    space = env.action_space
    if not isinstance(space, Discrete):
        raise ValueError(
            f"Q-learning agents need Discrete actions; {env.name} has {space}. Use --algo ppo."
        )
    observation = nn.Sequential([nn.Dense(hidden_size), nn.LayerNorm(), nn.relu])
    if torso == "mlp":
        extractor = FeatureExtractor(observation)
        return Network(extractor, MLP((hidden_size,)), DiscreteQNetwork(space.n))
    if torso not in TORSOS:
        raise ValueError(f"Unknown torso {torso!r}; choose one of: {', '.join(TORSOS)}.")
    extractor = FeatureExtractor(
        observation, action_extractor=OneHot(space.n), reward_extractor=MLP((8,))
    )
    return Network(extractor, SEQUENCE_MODELS[torso](hidden_size), DiscreteQNetwork(space.n))


def _build_q_agent(agent_class: type) -> Callable[..., Any]:
    def build(config, env, env_params, torso, hidden_size, learning_rate, metrics_callback):
        network = build_q_network(env, torso, hidden_size)
        optimizer = optax.adam(learning_rate)
        return agent_class(
            config, env, env_params, network, optimizer, metrics_callback=metrics_callback
        )

    return build


ALGORITHMS: dict[str, AlgorithmSpec] = {
    "ppo": AlgorithmSpec(
        config_class=PPOConfig,
        defaults={"num_envs": 4, "num_steps": 128},
        build=_build_ppo,
    ),
    "pqn": AlgorithmSpec(
        config_class=PQNConfig,
        defaults={"num_envs": 32, "num_steps": 16, "epsilon_decay_steps": 30_000},
        build=_build_q_agent(PQN),
    ),
    "dqn": AlgorithmSpec(
        config_class=DQNConfig,
        defaults={"num_envs": 8, "num_steps": 4, "gradient_steps": 2, "batch_size": 128},
        build=_build_q_agent(DQN),
    ),
}
"""``--algo`` choices."""
