"""The constructor checks every agent shares: config, env, networks and optimizers.

Each runs before anything is built, so a wrong argument is a clear error
naming the agent and the fix, not a failure deep inside ``init``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import optax

from memorax.envs import Environment

__all__ = ["check_agent_arguments"]


def check_agent_arguments(
    agent: str,
    config: Any,
    config_class: type[Any],
    env: Any,
    *,
    networks: Mapping[str, Any],
    optimizers: Mapping[str, Any],
) -> None:
    """Raise ``TypeError`` / ``ValueError`` unless the agent's common arguments fit together.

    Args:
        agent: the agent's name, for messages (``"PPO"``).
        config: must be a ``config_class``; its ``num_envs`` must equal the env's.
        config_class: the agent's config dataclass.
        env: must be a memorax ``Environment``.
        networks: ``{"actor": actor, ...}``: each a ``memorax.networks.Network``.
        optimizers: ``{"actor_optimizer": ..., ...}``: each an optax ``GradientTransformation``.
    """
    name = config_class.__name__
    if not isinstance(config, config_class):
        raise TypeError(f"{agent}: config must be {_article(name)} {name}, got "
                        f"{type(config).__name__}.")  # fmt: skip
    if not isinstance(env, Environment):
        raise TypeError(
            f"{agent}: env must be a memorax Environment (from memorax.envs.make), got "
            f"{type(env).__name__}."
        )
    if env.num_envs != config.num_envs:
        raise ValueError(
            f"{agent}: config.num_envs={config.num_envs} but {env.name} steps "
            f"{env.num_envs} copies; pass the same number to make(..., num_envs=...) "
            f"and {name}(num_envs=...)."
        )
    for role, network in networks.items():
        if not isinstance(network, nn.Module) or not hasattr(network, "initialize_carry"):
            raise TypeError(
                f"{agent}: {role} must be a memorax.networks.Network, got {type(network).__name__}."
            )
    for role, optimizer in optimizers.items():
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(
                f"{agent}: {role} must be an optax GradientTransformation "
                f"(e.g. optax.adam(3e-4)), got {type(optimizer).__name__}."
            )


def _article(word: str) -> str:
    # Letters whose spoken name starts with a vowel sound: "an R2D2Config", "an SACConfig".
    return "an" if word[:1] in "AEFHILMNORSX" else "a"
