"""The agents and networks the CLI can build, by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import optax

from memorax.algorithms import PPO, PPOConfig
from memorax.envs import Box, Discrete, Environment
from memorax.networks import (
    MLP,
    SEQUENCE_MODELS,
    Categorical,
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


ALGORITHMS: dict[str, AlgorithmSpec] = {
    "ppo": AlgorithmSpec(
        config_class=PPOConfig,
        defaults={"num_envs": 4, "num_steps": 128},
        build=_build_ppo,
    ),
}
"""``--algo`` choices."""
