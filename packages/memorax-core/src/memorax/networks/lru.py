"""Linear recurrent unit (Orvieto et al., 2023)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.dense import Dense
from memorax.networks.linear_recurrence import linear_recurrence
from memorax.networks.sequence_model import SequenceModel, check_sequence_inputs


class LRU(SequenceModel):
    """Linear recurrent unit: a complex diagonal recurrence with a stable parametrisation.

    ``lambda = exp(-exp(nu) + i exp(theta))`` (so ``|lambda| < 1``),
    ``h_t = lambda * h_{t-1} + gamma * (B x_t)`` with the normaliser
    ``gamma = sqrt(1 - |lambda|^2)`` learned from its initial value,
    ``y_t = Re(C h_t) + D x_t``. Eigenvalue moduli start uniformly on the ring
    ``[r_min, r_max]`` and phases in ``[0, max_phase]``.

    ``[B, T, F] -> [B, T, features]``; carry ``h: [B, state_size]`` complex64
    (``state_size`` defaults to ``features``).
    """

    features: int
    state_size: int | None = None
    r_min: float = 0.9
    r_max: float = 0.999
    max_phase: float = 2.0 * math.pi

    @property
    def _state_size(self) -> int:
        return self.state_size or self.features

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        check_sequence_inputs("LRU", inputs, episode_starts)
        if not 0.0 <= self.r_min < self.r_max <= 1.0:
            raise ValueError(
                f"LRU needs 0 <= r_min < r_max <= 1, got r_min={self.r_min}, r_max={self.r_max}."
            )
        n, f = self._state_size, inputs.shape[-1]

        def nu_init(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
            u = jax.random.uniform(key, shape)
            radius_sq = u * (self.r_max**2 - self.r_min**2) + self.r_min**2
            return jnp.log(-0.5 * jnp.log(radius_sq))

        def theta_init(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
            return jnp.log(self.max_phase * jax.random.uniform(key, shape) + 1e-8)

        nu_log = self.param("nu_log", nu_init, (n,))
        theta_log = self.param("theta_log", theta_init, (n,))
        eigenvalues = jnp.exp(-jnp.exp(nu_log) + 1j * jnp.exp(theta_log))
        gamma_log = self.param(
            "gamma_log",
            lambda _key, _shape: jnp.log(jnp.sqrt(1.0 - jnp.abs(eigenvalues) ** 2)),
            (n,),
        )
        normal = nn.initializers.normal
        b_re = self.param("B_re", normal(1.0 / math.sqrt(2 * f)), (f, n))
        b_im = self.param("B_im", normal(1.0 / math.sqrt(2 * f)), (f, n))
        c_re = self.param("C_re", normal(1.0 / math.sqrt(n)), (n, self.features))
        c_im = self.param("C_im", normal(1.0 / math.sqrt(n)), (n, self.features))

        driven = (inputs @ b_re + 1j * (inputs @ b_im)) * jnp.exp(gamma_log)
        states = linear_recurrence(eigenvalues, driven, carry, episode_starts)
        outputs = states.real @ c_re - states.imag @ c_im
        outputs = outputs + Dense(self.features, use_bias=False, name="D")(inputs)
        return states[:, -1], outputs

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> jax.Array:
        """Zeros ``[batch_size, state_size]`` complex64."""
        return jnp.zeros((batch_size, self._state_size), jnp.complex64)
