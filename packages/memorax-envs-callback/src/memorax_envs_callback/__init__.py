"""CPU environment backends for Memorax, bridged into jitted JAX (gymnasium, ALE, PufferLib)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
