"""Construction checks shared by the value-based agents (PQN, DQN): clear errors, early."""

from __future__ import annotations

from typing import Any

import flax.linen as nn

from memorax.envs import Discrete, Environment
from memorax.networks import DiscreteQNetwork

__all__ = ["check_discrete_q_network", "check_evaluation_env"]


def check_discrete_q_network(env: Environment, network: nn.Module, agent: str) -> None:
    """Raise unless ``env`` has Discrete actions and ``network`` a matching Q head.

    ``agent`` names the caller in the message (e.g. ``"DQN"``).
    """
    if not isinstance(network, nn.Module) or not hasattr(network, "initialize_carry"):
        raise TypeError(
            f"{agent}: network must be a memorax.networks.Network, got {type(network).__name__}."
        )
    space, head = env.action_space, getattr(network, "head", None)
    if not isinstance(space, Discrete):
        raise ValueError(
            f"{agent} needs a Discrete action space (it takes argmax over Q-values); "
            f"{env.name} has {space}."
        )
    if not isinstance(head, DiscreteQNetwork):
        raise ValueError(
            f"{agent}: the network's head must be a DiscreteQNetwork, got "
            f"{type(head).__name__}; use DiscreteQNetwork({space.n})."
        )
    if head.action_dim != space.n:
        raise ValueError(
            f"{agent}: the network's DiscreteQNetwork({head.action_dim}) does not match "
            f"{env.name}'s {space}; use DiscreteQNetwork({space.n})."
        )


def check_evaluation_env(env: Any, train_env: Environment, agent: str) -> None:
    """Raise unless ``env`` is an Environment with ``train_env``'s spaces."""
    if not isinstance(env, Environment):
        raise TypeError(
            f"{agent}.evaluate: env must be a memorax Environment, got {type(env).__name__}."
        )
    for space in ("observation_space", "action_space"):
        if getattr(env, space) != getattr(train_env, space):
            raise ValueError(
                f"{agent}.evaluate: the evaluation env's {space} {getattr(env, space)} differs "
                f"from the training env's {getattr(train_env, space)}; the agent cannot "
                "act in it."
            )
