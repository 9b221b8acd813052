"""Blocks to compose torsos from sequence models and plain modules.

Each block is a :class:`SequenceModel` whose carry is that of what it wraps
(``None`` for a plain module), so a transformer torso is a :class:`Stack` of
blocks, e.g. GPT-2 style::

    Stack([Dense(d)] + [
        block
        for _ in range(layers)
        for block in (
            Residual(PreNorm(MultiHeadAttention(d, heads, context))),
            Residual(PreNorm(FFN(4 * d))),
        )
    ] + [LayerNorm()])

and GTrXL style (Parisotto et al., 2020) with ``GatedResidual`` instead of
``Residual`` and no final norm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.dense import Dense
from memorax.networks.layer_norm import LayerNorm
from memorax.networks.sequence_model import (
    Carry,
    SequenceModel,
    check_sequence_inputs,
    is_sequence_model,
)


def apply_layer(
    layer: nn.Module, inputs: jax.Array, episode_starts: jax.Array, carry: Carry
) -> tuple[Carry, jax.Array]:
    """Call a sequence model with its carry, or a plain module without (carry ``None``)."""
    if is_sequence_model(layer):
        return layer(inputs, episode_starts, carry)
    return None, layer(inputs)


def initial_carry(layer: nn.Module, batch_size: int) -> Carry:
    """A layer's initial carry, ``None`` for a plain module."""
    return layer.initialize_carry(batch_size) if is_sequence_model(layer) else None


class Stack(SequenceModel):
    """Layers applied in order; the carry is the tuple of the layers' carries.

    Layers may be sequence models or plain modules ``[B, T, F] -> [B, T, F']``.
    """

    layers: Sequence[nn.Module]

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: tuple[Any, ...]
    ) -> tuple[tuple[Any, ...], jax.Array]:
        check_sequence_inputs("Stack", inputs, episode_starts)
        if len(carry) != len(self.layers):
            raise ValueError(
                f"Stack has {len(self.layers)} layers but got a carry of {len(carry)}; "
                "build it with Stack.initialize_carry."
            )
        x, carries = inputs, []
        for layer, layer_carry in zip(self.layers, carry, strict=True):
            layer_carry, x = apply_layer(layer, x, episode_starts, layer_carry)
            carries.append(layer_carry)
        return tuple(carries), x

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> tuple[Any, ...]:
        """One carry per layer (``None`` for plain modules)."""
        return tuple(initial_carry(layer, batch_size) for layer in self.layers)


class Residual(SequenceModel):
    """``x + layer(x)``; the layer must keep the feature size."""

    layer: nn.Module

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: Carry
    ) -> tuple[Carry, jax.Array]:
        carry, outputs = apply_layer(self.layer, inputs, episode_starts, carry)
        if outputs.shape != inputs.shape:
            raise ValueError(
                f"Residual needs its layer to keep the shape {tuple(inputs.shape)}, got "
                f"{tuple(outputs.shape)}; project to the layer's width before the block."
            )
        return carry, inputs + outputs

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> Carry:
        """The wrapped layer's initial carry."""
        return initial_carry(self.layer, batch_size)


class GatedResidual(SequenceModel):
    """GRU-type gate in place of the residual sum (GTrXL, Parisotto et al., 2020).

    With ``x`` the block input and ``y = layer(x)``:
    ``r = sigma(W_r y + U_r x)``, ``z = sigma(W_z y + U_z x - b_g)``,
    ``h = tanh(W_g y + U_g (r * x))``, output ``(1 - z) * x + z * h``.
    ``gate_bias = b_g > 0`` starts the block close to the identity.
    """

    layer: nn.Module
    gate_bias: float = 2.0

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: Carry
    ) -> tuple[Carry, jax.Array]:
        carry, y = apply_layer(self.layer, inputs, episode_starts, carry)
        width = inputs.shape[-1]
        if y.shape != inputs.shape:
            raise ValueError(
                f"GatedResidual needs its layer to keep the shape {tuple(inputs.shape)}, got "
                f"{tuple(y.shape)}; project to the layer's width before the block."
            )
        from_y = Dense(3 * width, use_bias=False, name="W")(y)
        w_r, w_z, w_g = jnp.split(from_y, 3, axis=-1)
        u_rz = Dense(2 * width, name="U_rz")(inputs)
        u_r, u_z = jnp.split(u_rz, 2, axis=-1)
        r = jax.nn.sigmoid(w_r + u_r)
        z = jax.nn.sigmoid(w_z + u_z - self.gate_bias)
        h = jnp.tanh(w_g + Dense(width, use_bias=False, name="U_g")(r * inputs))
        return carry, (1.0 - z) * inputs + z * h

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> Carry:
        """The wrapped layer's initial carry."""
        return initial_carry(self.layer, batch_size)


class PreNorm(SequenceModel):
    """``layer(LayerNorm(x))``."""

    layer: nn.Module

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: Carry
    ) -> tuple[Carry, jax.Array]:
        return apply_layer(self.layer, LayerNorm(name="norm")(inputs), episode_starts, carry)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> Carry:
        """The wrapped layer's initial carry."""
        return initial_carry(self.layer, batch_size)


class FFN(nn.Module):
    """Position-wise feed-forward: ``Dense(hidden) -> activation -> Dense(F)``.

    A plain module (no carry): ``[B, T, F] -> [B, T, F]``.
    """

    hidden_features: int
    activation: Callable[[jax.Array], jax.Array] = nn.gelu

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        x = self.activation(Dense(self.hidden_features, name="hidden")(inputs))
        return Dense(inputs.shape[-1], name="out")(x)
