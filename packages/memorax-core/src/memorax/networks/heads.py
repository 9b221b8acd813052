"""Output heads: policies return distributions, critics return values.

Every head takes torso features ``[B, T, H]``. The discount factor and any
other algorithm setting belong to the algorithm's config, not here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.dense import Dense
from memorax.networks.distributions import Categorical as CategoricalDistribution
from memorax.networks.distributions import DiagonalGaussian
from memorax.networks.distributions import SquashedGaussian as SquashedGaussianDistribution
from memorax.networks.initializers import orthogonal
from memorax.networks.mlp import MLP


def _dense(features: int, scale: float) -> nn.Dense:
    return Dense(features, kernel_init=orthogonal(scale))


class Categorical(nn.Module):
    """Discrete policy: ``[B, T, H] ->`` :class:`~memorax.networks.distributions.Categorical`.

    The last layer is initialised small (scale 0.01) so the initial policy is
    near uniform.
    """

    action_dim: int

    @nn.compact
    def __call__(self, features: jax.Array) -> CategoricalDistribution:
        return CategoricalDistribution(logits=_dense(self.action_dim, 0.01)(features))


class Gaussian(nn.Module):
    """Continuous policy with a state-independent, learned log std (PPO style).

    ``[B, T, H] ->`` :class:`~memorax.networks.distributions.DiagonalGaussian`
    with ``mean, log_std: [B, T, action_dim]``.
    """

    action_dim: int
    initial_log_std: float = 0.0

    @nn.compact
    def __call__(self, features: jax.Array) -> DiagonalGaussian:
        mean = _dense(self.action_dim, 0.01)(features)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.initial_log_std), (self.action_dim,)
        )
        return DiagonalGaussian(mean=mean, log_std=jnp.broadcast_to(log_std, mean.shape))


class SquashedGaussian(nn.Module):
    """Bounded continuous policy (SAC style): state-dependent mean and log std, then ``tanh``.

    ``[B, T, H] ->`` :class:`~memorax.networks.distributions.SquashedGaussian`;
    ``log_std`` is clipped to ``[log_std_min, log_std_max]``.
    """

    action_dim: int
    log_std_min: float = -20.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, features: jax.Array) -> SquashedGaussianDistribution:
        mean = _dense(self.action_dim, 0.01)(features)
        log_std = _dense(self.action_dim, 0.01)(features)
        log_std = jnp.clip(log_std, self.log_std_min, self.log_std_max)
        return SquashedGaussianDistribution(mean=mean, log_std=log_std)


class VNetwork(nn.Module):
    """State-value head: ``[B, T, H] -> [B, T]``."""

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        return _dense(1, 1.0)(features)[..., 0]


class DiscreteQNetwork(nn.Module):
    """Action values for discrete actions: ``[B, T, H] -> [B, T, action_dim]``.

    With ``dueling=True``: ``Q = V + A - mean_a(A)`` (Wang et al., 2016).
    """

    action_dim: int
    dueling: bool = False

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        advantages = _dense(self.action_dim, 1.0)(features)
        if not self.dueling:
            return advantages
        value = _dense(1, 1.0)(features)
        return value + advantages - jnp.mean(advantages, axis=-1, keepdims=True)


class ContinuousQNetwork(nn.Module):
    """Action value for a continuous action: ``(features [B, T, H], action [B, T, A]) -> [B, T]``.

    The action is concatenated to the features and passed through an MLP of
    ``hidden_features`` then a linear output. Inside a :class:`Network`, pass
    the action as ``Network.__call__(..., action=action)``.
    """

    hidden_features: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, features: jax.Array, action: jax.Array) -> jax.Array:
        if action.shape[:-1] != features.shape[:-1]:
            raise ValueError(
                f"ContinuousQNetwork expects action [B, T, A] matching features "
                f"{tuple(features.shape[:-1])} on the leading axes, got {tuple(action.shape)}."
            )
        x = jnp.concatenate([features, action.astype(features.dtype)], axis=-1)
        x = MLP(self.hidden_features)(x)
        return _dense(1, 1.0)(x)[..., 0]


class TwinContinuousQNetwork(nn.Module):
    """Two independent :class:`ContinuousQNetwork` s (clipped double Q, TD3/SAC).

    ``(features [B, T, H], action [B, T, A]) -> [2, B, T]``: index 0 and 1 are
    the two estimates; take ``jnp.min(q, axis=0)`` for the clipped target.
    """

    hidden_features: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, features: jax.Array, action: jax.Array) -> jax.Array:
        twin = nn.vmap(
            ContinuousQNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=2,
        )
        return twin(self.hidden_features, name="twin")(features, action)


class Alpha(nn.Module):
    """Learned entropy temperature (SAC): stores ``log_alpha``, returns ``alpha > 0``.

    ``Alpha(initial=0.1).init(key)`` then ``.apply(params)`` gives the scalar.
    Any positional input is ignored, so it can also sit at the end of a
    :class:`Network`.
    """

    initial: float = 1.0

    @nn.compact
    def __call__(self, *unused_inputs: jax.Array) -> jax.Array:
        if self.initial <= 0:
            raise ValueError(f"Alpha(initial=...) must be positive, got {self.initial}.")
        log_alpha = self.param("log_alpha", nn.initializers.constant(math.log(self.initial)), ())
        return jnp.exp(log_alpha)
