"""Every shipped sequence model, by name, as a factory of its output width.

The property tests and the benchmark iterate over :data:`SEQUENCE_MODELS`;
adding a model here gets it tested and benchmarked.
"""

from __future__ import annotations

from collections.abc import Callable

from memorax.networks.attention import MultiHeadAttention
from memorax.networks.delta_net import DeltaNet, GatedDeltaNet
from memorax.networks.delta_product import DeltaProduct
from memorax.networks.ffm import FFM
from memorax.networks.gru import GRU
from memorax.networks.linear_attention import LinearAttention
from memorax.networks.lru import LRU
from memorax.networks.lstm import LSTM
from memorax.networks.mamba import Mamba
from memorax.networks.min_gru import MinGRU
from memorax.networks.mlstm import MLSTM
from memorax.networks.s5 import S5
from memorax.networks.sequence_model import SequenceModel
from memorax.networks.slstm import SLSTM
from memorax.networks.transformer_torsos import gpt2_torso, gtrxl_torso

SEQUENCE_MODELS: dict[str, Callable[[int], SequenceModel]] = {
    "lstm": lambda features: LSTM(features),
    "gru": lambda features: GRU(features),
    "slstm": lambda features: SLSTM(features, num_heads=4),
    "min_gru": lambda features: MinGRU(features),
    "lru": lambda features: LRU(features),
    "s5": lambda features: S5(features, state_size=64),
    "ffm": lambda features: FFM(features, memory_size=32, context_size=4),
    "linear_attention": lambda features: LinearAttention(features, num_heads=4),
    "mlstm": lambda features: MLSTM(features, num_heads=4),
    "mamba": lambda features: Mamba(features, state_size=16, head_dim=16),
    "deltanet": lambda features: DeltaNet(features, num_heads=4),
    "gated_deltanet": lambda features: GatedDeltaNet(features, num_heads=4),
    "delta_product": lambda features: DeltaProduct(features, num_heads=4, householder_steps=2),
    "attention_rope": lambda features: MultiHeadAttention(
        features, num_heads=4, context_length=64, positional="rope"
    ),
    "attention_alibi": lambda features: MultiHeadAttention(
        features, num_heads=4, context_length=64, positional="alibi"
    ),
    "gpt2": lambda features: gpt2_torso(features, num_layers=2, num_heads=4, context_length=64),
    "gtrxl": lambda features: gtrxl_torso(features, num_layers=2, num_heads=4, context_length=64),
}
"""Name -> ``factory(features) -> SequenceModel`` for every shipped sequence model."""
