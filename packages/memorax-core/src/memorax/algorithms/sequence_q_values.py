"""Q-values along replayed sequences, unrolled one step at a time from a given carry.

A replayed sequence needs two Q-values per step: ``Q(o_t)`` (what is learned)
and ``Q(final_observation_t)`` (what step ``t`` bootstraps from). The second
is computed from the carry right after step ``t``, before any reset, so a
truncated episode bootstraps with the memory it had. Where the unroll starts
from is the caller's choice: the initial carry (DQN's zero start) or the
carry stored in replay at the sequence start (R2D2's stored state).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["apply_network", "unroll_q_values"]


def apply_network(network: nn.Module, params: Any, *args: Any) -> tuple[Any, Any]:
    """``network.apply(params, *args)``, typed as what a Network returns: ``(carry, output)``."""
    return network.apply(params, *args)


def unroll_q_values(
    network: nn.Module,
    params: Any,
    carry: Any,
    steps: dict[str, jax.Array],
    burn_in: int = 0,
) -> tuple[Any, jax.Array, jax.Array]:
    """Run ``network`` over ``[B, T]`` stored steps from ``carry``.

    Args:
        network: a :class:`~memorax.networks.Network` with a Q head.
        params: its variables.
        carry: the torso carry before the first step (leaves ``[B, ...]``;
            ``None`` for a feed-forward torso).
        steps: batch-major ``[B, T, ...]`` arrays ``observation``,
            ``episode_start``, ``previous_action``, ``previous_reward`` (what
            the network saw when acting) and ``action``, ``reward``,
            ``final_observation`` (what it would see next, before any reset).
        burn_in: no gradient flows back through the carry into the first
            ``burn_in`` steps (R2D2's burn-in: they only warm the carry up).

    Returns:
        ``(carry, q, bootstrap_q)``: the carry after the last step, and
        ``Q(observation_t)`` and ``Q(final_observation_t)``, both
        ``[B, T, num_actions]``.
    """
    batch = steps["observation"].shape[0]
    continuing = jnp.zeros((batch, 1), bool)

    def step(carry: Any, x: dict[str, jax.Array]) -> tuple[Any, tuple[jax.Array, jax.Array]]:
        # where(c, stop_gradient(v), v) has zero gradient to v only where c holds.
        carry = jax.tree.map(
            lambda c: jnp.where(x["index"] == burn_in, jax.lax.stop_gradient(c), c), carry
        )
        carry, q = apply_network(
            network, params, x["observation"][:, None], x["episode_start"][:, None], carry,
            x["previous_action"][:, None], x["previous_reward"][:, None],
        )  # fmt: skip
        # The next observation of the same episode continues this carry.
        _, bootstrap_q = apply_network(
            network, params, x["final_observation"][:, None], continuing, carry,
            x["action"][:, None], x["reward"][:, None],
        )  # fmt: skip
        return carry, (q[:, 0], bootstrap_q[:, 0])

    time_major = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), steps)
    time_major["index"] = jnp.arange(steps["observation"].shape[1])
    carry, (q, bootstrap_q) = jax.lax.scan(step, carry, time_major)
    return carry, jnp.swapaxes(q, 0, 1), jnp.swapaxes(bootstrap_q, 0, 1)
