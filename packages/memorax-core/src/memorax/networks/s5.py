"""S5: simplified structured state space layer (Smith et al., 2023)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.dense import Dense
from memorax.networks.linear_recurrence import linear_recurrence
from memorax.networks.sequence_model import SequenceModel, check_sequence_inputs


class S5(SequenceModel):
    """A diagonal complex continuous-time SSM, discretised by zero-order hold.

    Continuous ``x' = Lambda x + B u``, ``y = Re(C x) + D u`` with learned
    per-state step ``Delta``: ``Lambda_bar = exp(Lambda Delta)``,
    ``B_bar = (Lambda_bar - 1) / Lambda * B``, then
    ``x_t = Lambda_bar x_{t-1} + B_bar u_t`` by a parallel scan. ``Lambda``
    starts at ``-1/2 + i pi n`` (the S4D-Lin initialisation), ``Delta`` log-uniform
    in ``[dt_min, dt_max]``.

    ``[B, T, F] -> [B, T, features]``; carry ``x: [B, state_size]`` complex64.
    """

    features: int
    state_size: int = 64
    dt_min: float = 1e-3
    dt_max: float = 1e-1

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        check_sequence_inputs("S5", inputs, episode_starts)
        p, f = self.state_size, inputs.shape[-1]
        log_neg_real = self.param("log_neg_real", nn.initializers.constant(math.log(0.5)), (p,))
        imag = self.param("imag", lambda _key, shape: math.pi * jnp.arange(shape[0]), (p,))
        log_step = self.param(
            "log_step",
            lambda key, shape: jax.random.uniform(
                key, shape, minval=math.log(self.dt_min), maxval=math.log(self.dt_max)
            ),
            (p,),
        )
        continuous = -jnp.exp(log_neg_real) + 1j * imag
        discrete = jnp.exp(continuous * jnp.exp(log_step))
        input_scale = (discrete - 1.0) / continuous
        normal = nn.initializers.normal
        b_re = self.param("B_re", normal(1.0 / math.sqrt(2 * f)), (f, p))
        b_im = self.param("B_im", normal(1.0 / math.sqrt(2 * f)), (f, p))
        c_re = self.param("C_re", normal(1.0 / math.sqrt(p)), (p, self.features))
        c_im = self.param("C_im", normal(1.0 / math.sqrt(p)), (p, self.features))

        driven = (inputs @ b_re + 1j * (inputs @ b_im)) * input_scale
        states = linear_recurrence(discrete, driven, carry, episode_starts)
        outputs = states.real @ c_re - states.imag @ c_im
        outputs = outputs + Dense(self.features, use_bias=False, name="D")(inputs)
        return states[:, -1], outputs

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> jax.Array:
        """Zeros ``[batch_size, state_size]`` complex64."""
        return jnp.zeros((batch_size, self.state_size), jnp.complex64)
