"""The constructor checks every agent shares: config, env, networks and optimizers.

Each runs before anything is built, so a wrong argument is a clear error
naming the agent and the fix, not a failure deep inside ``init``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import optax

from memorax.envs import Environment

__all__ = [
    "MEMORY_BURN_IN_LENGTH",
    "MEMORY_SEQUENCE_LENGTH",
    "check_agent_arguments",
    "resolve_replay_sequences",
]

MEMORY_SEQUENCE_LENGTH = 20
"""Learned steps per replayed sequence when a replay agent has a memory torso and the
config leaves ``sequence_length`` unset (R2D2 uses 80 on Atari; 20 learns the memory
tasks here at a quarter of the cost)."""

MEMORY_BURN_IN_LENGTH = 10
"""Steps before them that only warm up the carry, for the same agents (R2D2: 40)."""


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


def resolve_replay_sequences(agent: str, config: Any, recurrent: bool, torso: str) -> Any:
    """``config`` with ``sequence_length`` and ``burn_in_length`` set for the agent's networks.

    A replay agent learns what to remember only from sequences: one replayed
    step unrolled from a carry gives the recurrent weights no gradient through
    time. Unset (``None``) fields become ``1`` and ``0`` for feed-forward
    networks and :data:`MEMORY_SEQUENCE_LENGTH` / :data:`MEMORY_BURN_IN_LENGTH`
    for a memory torso. Raises ``ValueError`` for sequences on a feed-forward
    agent (nothing to carry) and for ``sequence_length=1`` with a memory torso.

    Args:
        agent: the agent's name, for messages (``"DQN"``).
        config: a frozen config dataclass with ``sequence_length`` and
            ``burn_in_length`` fields (``int`` or ``None``).
        recurrent: whether a network has a sequence-model torso.
        torso: the memory torso's class name, for the message.

    Returns:
        ``config`` itself, or a copy with the unset fields filled in (its own
        checks run again on the copy).
    """
    length, burn_in = config.sequence_length, config.burn_in_length
    if not recurrent:
        if (length or 1) > 1 or (burn_in or 0) > 0:
            raise ValueError(
                f"{agent}: burn_in_length > 0 or sequence_length > 1 needs a recurrent "
                "(SequenceModel) torso; a feed-forward agent learns from single steps. Set "
                "burn_in_length=0 and sequence_length=1 (or leave both unset)."
            )
        length, burn_in = 1, 0
    else:
        if length == 1:
            raise ValueError(
                f"{agent}: sequence_length=1 with a memory torso ({torso}) trains no memory: "
                "a single replayed step gives the recurrent weights no gradient through "
                "time, while acting relies on the carry. Use sequence_length >= 2, or leave "
                f"it unset for the default of {MEMORY_SEQUENCE_LENGTH} learned steps after "
                f"{MEMORY_BURN_IN_LENGTH} burn-in steps; for a memoryless agent use a "
                "feed-forward torso (e.g. memorax.networks.MLP)."
            )
        length = MEMORY_SEQUENCE_LENGTH if length is None else length
        burn_in = MEMORY_BURN_IN_LENGTH if burn_in is None else burn_in
    if (length, burn_in) == (config.sequence_length, config.burn_in_length):
        return config
    return dataclasses.replace(config, sequence_length=length, burn_in_length=burn_in)


def _article(word: str) -> str:
    # Letters whose spoken name starts with a vowel sound: "an R2D2Config", "an SACConfig".
    return "an" if word[:1] in "AEFHILMNORSX" else "a"
