"""Action distributions in plain JAX, as pytrees that can leave a jitted function.

Each distribution has ``sample(key)``, ``log_prob(x)``, ``entropy()`` and
``mode()``; batch shapes are whatever the parameters carry (``[B, T]`` when
returned by a policy head).
"""

from __future__ import annotations

import math

import flax.struct
import jax
import jax.numpy as jnp

_HALF_LOG_TWO_PI_E = 0.5 * math.log(2.0 * math.pi * math.e)
_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


@flax.struct.dataclass
class Categorical:
    """Categorical distribution over ``A`` classes. ``logits: [..., A]`` (unnormalised)."""

    logits: jax.Array

    @property
    def log_probs(self) -> jax.Array:
        """Normalised log-probabilities ``[..., A]``."""
        return jax.nn.log_softmax(self.logits, axis=-1)

    def sample(self, key: jax.Array) -> jax.Array:
        """Draw integer actions ``[...]``."""
        return jax.random.categorical(key, self.logits, axis=-1)

    def log_prob(self, x: jax.Array) -> jax.Array:
        """Log-probability of integer actions ``x: [...]``."""
        x = jnp.asarray(x, jnp.int32)
        return jnp.take_along_axis(self.log_probs, x[..., None], axis=-1)[..., 0]

    def entropy(self) -> jax.Array:
        """Exact entropy ``-sum p log p``, shape ``[...]``."""
        log_p = self.log_probs
        return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)

    def mode(self) -> jax.Array:
        """Most likely action ``[...]``."""
        return jnp.argmax(self.logits, axis=-1)


@flax.struct.dataclass
class DiagonalGaussian:
    """Independent normals over the last axis. ``mean, log_std: [..., A]``."""

    mean: jax.Array
    log_std: jax.Array

    def sample(self, key: jax.Array) -> jax.Array:
        """Draw actions ``[..., A]``."""
        noise = jax.random.normal(key, jnp.shape(self.mean), jnp.result_type(self.mean))
        return self.mean + jnp.exp(self.log_std) * noise

    def log_prob(self, x: jax.Array) -> jax.Array:
        """Joint log-density of ``x: [..., A]``, summed over ``A``: shape ``[...]``."""
        z = (x - self.mean) * jnp.exp(-self.log_std)
        return jnp.sum(-0.5 * z**2 - self.log_std - _HALF_LOG_TWO_PI, axis=-1)

    def entropy(self) -> jax.Array:
        """Exact differential entropy, summed over ``A``: shape ``[...]``."""
        log_std = jnp.broadcast_to(self.log_std, jnp.shape(self.mean))
        return jnp.sum(log_std + _HALF_LOG_TWO_PI_E, axis=-1)

    def mode(self) -> jax.Array:
        """The mean ``[..., A]``."""
        return self.mean


def _log_one_minus_tanh_squared(u: jax.Array) -> jax.Array:
    # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), which stays finite for
    # large |u| where 1 - tanh(u)^2 rounds to zero.
    return 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))


@flax.struct.dataclass
class SquashedGaussian:
    """``tanh`` of a diagonal Gaussian: actions in ``(-1, 1)^A`` (SAC's policy).

    ``mean, log_std: [..., A]`` parametrise the Gaussian before the ``tanh``.
    Rescale to the environment's bounds outside the distribution.
    """

    mean: jax.Array
    log_std: jax.Array

    @property
    def base(self) -> DiagonalGaussian:
        """The Gaussian before the ``tanh``."""
        return DiagonalGaussian(self.mean, self.log_std)

    def sample(self, key: jax.Array) -> jax.Array:
        """Draw actions ``[..., A]`` in ``(-1, 1)``."""
        return jnp.tanh(self.base.sample(key))

    def sample_and_log_prob(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Draw actions and their log-density without inverting the ``tanh``.

        Preferred over ``log_prob(sample(key))``: ``atanh`` of an action that
        rounded to ``+-1`` is inexact, while this uses the pre-``tanh`` value.
        """
        u = self.base.sample(key)
        log_prob = self.base.log_prob(u) - jnp.sum(_log_one_minus_tanh_squared(u), axis=-1)
        return jnp.tanh(u), log_prob

    def log_prob(self, x: jax.Array, epsilon: float = 1e-6) -> jax.Array:
        """Log-density of actions ``x: [..., A]`` (clipped into the open interval first)."""
        x = jnp.clip(x, -1.0 + epsilon, 1.0 - epsilon)
        u = jnp.arctanh(x)
        return self.base.log_prob(u) - jnp.sum(_log_one_minus_tanh_squared(u), axis=-1)

    def entropy(self) -> jax.Array:
        """Entropy of the Gaussian *before* the ``tanh``: shape ``[...]``.

        The squashed entropy has no closed form. Since ``log|d tanh(u)/du| <= 0``,
        the returned value is an upper bound on it. For an unbiased estimate
        use ``-sample_and_log_prob(key)[1]``.
        """
        return self.base.entropy()

    def mode(self) -> jax.Array:
        """``tanh`` of the Gaussian mean ``[..., A]``."""
        return jnp.tanh(self.mean)
