"""Fresh episodes in a training env, with the acting inputs that go with them."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.envs import Environment

__all__ = ["start_episodes"]


def start_episodes(
    key: jax.Array, env: Environment, env_params: Any, network: nn.Module
) -> dict[str, Any]:
    """Reset ``env`` and return what a discrete-action agent acts on next.

    Returns:
        A dict to ``state.replace(**...)`` with: ``env_state``; ``observation``
        ``[num_envs, *obs_shape]``; ``episode_start`` ``[num_envs]`` True;
        ``previous_action`` ``[num_envs]`` int32 zeros; ``previous_reward``
        ``[num_envs]`` float32 zeros; ``carry``, the network's initial carry
        for ``num_envs`` rows (``None`` for a feed-forward torso).
    """
    num_envs = env.num_envs
    observation, env_state = env.reset(key, env_params)
    return {
        "env_state": env_state,
        "observation": observation,
        "episode_start": jnp.ones((num_envs,), bool),
        "previous_action": jnp.zeros((num_envs,), jnp.int32),
        "previous_reward": jnp.zeros((num_envs,), jnp.float32),
        "carry": network.initialize_carry(num_envs),
    }
