"""Registers the test-only ``test::Countdown-v0`` namespace for core's env tests."""

from __future__ import annotations

import pytest

from memorax.envs import registry

from .countdown import NAMESPACE


class _EntryPoint:
    """Stands in for an installed entry point, as importlib.metadata returns them."""

    def __init__(self, name: str, value: object):
        self.name = name
        self._value = value

    def load(self) -> object:
        return self._value


@pytest.fixture(autouse=True, scope="session")
def test_namespace():
    """Adds ``test::`` next to whatever namespaces are really installed."""
    real = registry._entry_points()
    patched = {**real, "test": _EntryPoint("test", NAMESPACE)}
    registry._entry_points.cache_clear()
    registry.get_namespace.cache_clear()
    original = registry._entry_points
    registry._entry_points = lambda: patched  # type: ignore[assignment]
    yield patched
    registry._entry_points = original
    registry.get_namespace.cache_clear()
