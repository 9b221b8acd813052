"""Evaluation of a Q-network's greedy policy, shared by the Q-learning agents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.algorithms.evaluation import EvaluationResult, run_episodes
from memorax.envs import Environment

__all__ = ["evaluate_greedy"]


def evaluate_greedy(
    key: jax.Array,
    network: nn.Module,
    params: Any,
    env: Environment,
    env_params: Any,
    env_action: Callable[[jax.Array], jax.Array],
    num_episodes: int,
    max_steps: int,
) -> EvaluationResult:
    """Runs ``num_episodes`` per env copy acting ``argmax_a Q(s, a)``.

    ``env_action`` maps the network's action index to the env's action.
    """

    def policy(carry, observation, start, prev_action, prev_reward):
        carry, q = _apply(
            network,
            params, observation[:, None], start[:, None], carry,
            prev_action[:, None], prev_reward[:, None],
        )  # fmt: skip
        action = jnp.argmax(q[:, 0], axis=-1).astype(jnp.int32)
        return carry, action, env_action(action)

    result, _, _ = run_episodes(
        key,
        env,
        env_params,
        policy,
        network.initialize_carry(env.num_envs),
        jnp.zeros((env.num_envs,), jnp.int32),
        num_episodes,
        max_steps,
    )
    return result


def _apply(network: nn.Module, *args: Any) -> tuple[Any, Any]:
    """``network.apply`` typed as what a Network returns: ``(carry, output)``."""
    return network.apply(*args)
