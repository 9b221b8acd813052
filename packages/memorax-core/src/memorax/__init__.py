"""Memorax: memory-augmented reinforcement learning in JAX."""

__version__ = "0.1.0"

__all__ = ["__version__"]
