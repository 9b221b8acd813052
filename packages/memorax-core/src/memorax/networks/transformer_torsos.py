"""Transformer torsos built from the blocks: GPT-2 style and GTrXL style."""

from __future__ import annotations

from typing import Literal

import flax.linen as nn

from memorax.networks.attention import MultiHeadAttention
from memorax.networks.blocks import FFN, GatedResidual, PreNorm, Residual, Stack
from memorax.networks.dense import Dense
from memorax.networks.layer_norm import LayerNorm


def gpt2_torso(
    features: int,
    num_layers: int = 2,
    num_heads: int = 4,
    context_length: int = 64,
    positional: Literal["rope", "alibi", "none"] = "rope",
) -> Stack:
    """Pre-norm residual transformer (GPT-2 layout) with a final LayerNorm.

    ``[B, T, F] -> [B, T, features]``; the first layer projects to ``features``.
    """
    layers: list[nn.Module] = [Dense(features)]
    for _ in range(num_layers):
        attention = MultiHeadAttention(features, num_heads, context_length, positional)
        layers += [Residual(PreNorm(attention)), Residual(PreNorm(FFN(4 * features)))]
    return Stack([*layers, LayerNorm()])


def gtrxl_torso(
    features: int,
    num_layers: int = 2,
    num_heads: int = 4,
    context_length: int = 64,
    positional: Literal["rope", "alibi", "none"] = "rope",
    gate_bias: float = 2.0,
) -> Stack:
    """Gated transformer-XL (Parisotto et al., 2020): pre-norm blocks joined by GRU gates.

    ``[B, T, F] -> [B, T, features]``; the first layer projects to ``features``.
    """
    layers: list[nn.Module] = [Dense(features)]
    for _ in range(num_layers):
        attention = MultiHeadAttention(features, num_heads, context_length, positional)
        layers += [
            GatedResidual(PreNorm(attention), gate_bias),
            GatedResidual(PreNorm(FFN(4 * features)), gate_bias),
        ]
    return Stack(layers)
