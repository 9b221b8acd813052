"""Observation and action spaces: Discrete, Box and MultiDiscrete.

A space describes one environment copy; batched arrays carry a leading
``num_envs`` axis in front of ``space.shape``. Spaces are frozen and
hashable so they can be closed over by jitted functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Box", "Discrete", "MultiDiscrete", "Space"]


class Space:
    """Base class of all spaces: a shape, a dtype, ``sample`` and ``contains``."""

    shape: tuple[int, ...]
    dtype: Any

    def sample(self, key: jax.Array) -> jax.Array:
        """Draws one element uniformly (or as uniformly as the space allows)."""
        raise NotImplementedError

    def contains(self, x: jax.Array) -> jax.Array:
        """Whether ``x`` (one element, no batch axis) lies in the space, as a boolean scalar."""
        raise NotImplementedError


@dataclass(frozen=True)
class Discrete(Space):
    """Integers ``start, ..., start + n - 1``."""

    n: int
    start: int = 0
    dtype: Any = jnp.int32

    def __post_init__(self) -> None:
        if int(self.n) < 1:
            raise ValueError(f"Discrete(n={self.n}): n must be a positive number of actions.")

    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return ()

    def __repr__(self) -> str:
        start = f", start={self.start}" if self.start else ""
        return f"Discrete({self.n}{start})"

    def sample(self, key: jax.Array) -> jax.Array:
        """One integer drawn uniformly from the space."""
        return jax.random.randint(key, (), self.start, self.start + self.n, dtype=self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        """True when ``x`` is an integer scalar inside ``[start, start + n)``."""
        x = jnp.asarray(x)
        if x.shape != () or not jnp.issubdtype(x.dtype, jnp.integer):
            return jnp.asarray(False)
        return (x >= self.start) & (x < self.start + self.n)


@dataclass(frozen=True)
class MultiDiscrete(Space):
    """A vector of independent discrete choices, choice ``i`` in ``[0, nvec[i])``."""

    nvec: tuple[int, ...]
    dtype: Any = jnp.int32

    def __post_init__(self) -> None:
        nvec = tuple(int(n) for n in np.asarray(self.nvec).reshape(-1))
        if not nvec or min(nvec) < 1:
            raise ValueError(f"MultiDiscrete(nvec={self.nvec}): every entry must be positive.")
        object.__setattr__(self, "nvec", nvec)

    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (len(self.nvec),)

    def __repr__(self) -> str:
        return f"MultiDiscrete({list(self.nvec)})"

    def sample(self, key: jax.Array) -> jax.Array:
        """One vector of choices, each drawn uniformly."""
        high = jnp.asarray(self.nvec, dtype=self.dtype)
        return jax.random.randint(key, self.shape, 0, high, dtype=self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        """True when ``x`` is an integer vector with every entry in range."""
        x = jnp.asarray(x)
        if x.shape != self.shape or not jnp.issubdtype(x.dtype, jnp.integer):
            return jnp.asarray(False)
        return jnp.all((x >= 0) & (x < jnp.asarray(self.nvec)))


@dataclass(frozen=True)
class Box(Space):
    """A box of real (or integer) values between ``low`` and ``high``, per element.

    ``low`` and ``high`` are stored as tuples so the space stays hashable;
    read them as arrays through :attr:`low_array` and :attr:`high_array`.
    """

    low: Any
    high: Any
    shape: tuple[int, ...] = field(default=())
    dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        low = np.asarray(self.low, dtype=np.float64)
        high = np.asarray(self.high, dtype=np.float64)
        try:
            if not shape:
                shape = np.broadcast_shapes(low.shape, high.shape)
            low = np.broadcast_to(low, shape)
            high = np.broadcast_to(high, shape)
        except ValueError as error:
            raise ValueError(
                f"Box: low {low.shape} and high {high.shape} do not broadcast to shape {shape}."
            ) from error
        if np.any(low > high):
            raise ValueError("Box: every entry of low must be <= the matching entry of high.")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "low", _to_tuple(low))
        object.__setattr__(self, "high", _to_tuple(high))

    def __repr__(self) -> str:
        low, high = self.low_array, self.high_array
        if low.size and np.all(low == low.flat[0]) and np.all(high == high.flat[0]):
            bounds = f"low={low.flat[0]:g}, high={high.flat[0]:g}"
        else:
            show = np.array2string
            bounds = f"low={show(low, threshold=8)}, high={show(high, threshold=8)}"
        return f"Box({bounds}, shape={self.shape}, dtype={np.dtype(self.dtype).name})"

    @property
    def low_array(self) -> np.ndarray:
        """``low`` as an array of ``shape``."""
        return np.asarray(self.low, dtype=np.float64).reshape(self.shape)

    @property
    def high_array(self) -> np.ndarray:
        """``high`` as an array of ``shape``."""
        return np.asarray(self.high, dtype=np.float64).reshape(self.shape)

    def sample(self, key: jax.Array) -> jax.Array:
        """Uniform in bounded dimensions, standard normal where a bound is infinite."""
        low, high = self.low_array, self.high_array
        if jnp.issubdtype(self.dtype, jnp.integer):
            lo = np.clip(low, np.iinfo(np.int32).min, np.iinfo(np.int32).max)
            hi = np.clip(high, np.iinfo(np.int32).min, np.iinfo(np.int32).max - 1)
            return jax.random.randint(key, self.shape, lo, hi + 1, dtype=self.dtype)
        bounded = np.isfinite(low) & np.isfinite(high)
        uniform_key, normal_key = jax.random.split(key)
        safe_low = np.where(bounded, low, 0.0)
        safe_high = np.where(bounded, high, 1.0)
        uniform = jax.random.uniform(uniform_key, self.shape, minval=safe_low, maxval=safe_high)
        normal = jax.random.normal(normal_key, self.shape)
        sample = jnp.where(bounded, uniform, jnp.clip(normal, low, high))
        return sample.astype(self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        """True when ``x`` has the space's shape and every entry lies within the bounds."""
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        return jnp.all((x >= self.low_array) & (x <= self.high_array))


def _to_tuple(array: np.ndarray) -> Any:
    """Nested tuples of floats, hashable stand-in for an array."""
    return tuple(array.reshape(-1).tolist())
