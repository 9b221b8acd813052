"""Networks: ``Network = feature extractor -> torso -> head``, and memory models.

Every sequence model follows :class:`SequenceModel`: one implementation for
acting (``T = 1``) and training (whole sequences), with the carry reset where
an episode starts. :data:`SEQUENCE_MODELS` lists them all by name.
"""

from memorax.networks import distributions
from memorax.networks.attention import MultiHeadAttention
from memorax.networks.blocks import FFN, GatedResidual, PreNorm, Residual, Stack
from memorax.networks.causal_conv import CausalConv
from memorax.networks.chunked_delta_rule import chunked_delta_rule
from memorax.networks.chunked_linear_attention import chunked_linear_attention
from memorax.networks.delta_net import DeltaNet, GatedDeltaNet
from memorax.networks.delta_product import DeltaProduct
from memorax.networks.dense import Dense
from memorax.networks.feature_extractor import FeatureExtractor
from memorax.networks.ffm import FFM
from memorax.networks.gru import GRU
from memorax.networks.heads import (
    Alpha,
    Categorical,
    ContinuousQNetwork,
    DiscreteQNetwork,
    Gaussian,
    SquashedGaussian,
    TwinContinuousQNetwork,
    VNetwork,
)
from memorax.networks.initializers import orthogonal
from memorax.networks.layer_norm import LayerNorm
from memorax.networks.linear_attention import LinearAttention
from memorax.networks.linear_recurrence import linear_recurrence
from memorax.networks.lru import LRU
from memorax.networks.lstm import LSTM
from memorax.networks.mamba import Mamba
from memorax.networks.min_gru import MinGRU
from memorax.networks.mlp import MLP, OneHot
from memorax.networks.mlstm import MLSTM
from memorax.networks.network import Network
from memorax.networks.patch_conv import PatchConv
from memorax.networks.registry import SEQUENCE_MODELS
from memorax.networks.s5 import S5
from memorax.networks.sequence_model import SequenceModel, is_sequence_model
from memorax.networks.slstm import SLSTM
from memorax.networks.transformer_torsos import gpt2_torso, gtrxl_torso

__all__ = [
    "FFM",
    "FFN",
    "GRU",
    "LRU",
    "LSTM",
    "MLP",
    "MLSTM",
    "S5",
    "SEQUENCE_MODELS",
    "SLSTM",
    "Alpha",
    "Categorical",
    "CausalConv",
    "ContinuousQNetwork",
    "DeltaNet",
    "DeltaProduct",
    "Dense",
    "LayerNorm",
    "DiscreteQNetwork",
    "FeatureExtractor",
    "GatedDeltaNet",
    "GatedResidual",
    "Gaussian",
    "LinearAttention",
    "Mamba",
    "MinGRU",
    "MultiHeadAttention",
    "Network",
    "OneHot",
    "PatchConv",
    "PreNorm",
    "Residual",
    "SequenceModel",
    "SquashedGaussian",
    "Stack",
    "TwinContinuousQNetwork",
    "VNetwork",
    "chunked_delta_rule",
    "chunked_linear_attention",
    "distributions",
    "gpt2_torso",
    "gtrxl_torso",
    "is_sequence_model",
    "linear_recurrence",
    "orthogonal",
]
