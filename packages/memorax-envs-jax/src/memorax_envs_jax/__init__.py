"""JAX-native environment backends for Memorax (gymnax, craftax, navix)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
