"""Small networks shared by the algorithm tests."""

from __future__ import annotations

import flax.linen as nn

from memorax.networks import GRU, MLP, FeatureExtractor, Network


def mlp_network(head: nn.Module, width: int = 16, **extractors: nn.Module) -> Network:
    """Observation MLP -> MLP torso -> ``head`` (no memory)."""
    extractor = FeatureExtractor(MLP((width,), activation=nn.tanh), **extractors)
    return Network(extractor, MLP((width,), activation=nn.tanh), head)


def gru_network(head: nn.Module, width: int = 16, **extractors: nn.Module) -> Network:
    """Observation MLP -> GRU torso -> ``head``."""
    extractor = FeatureExtractor(MLP((width,), activation=nn.tanh), **extractors)
    return Network(extractor, GRU(width), head)
