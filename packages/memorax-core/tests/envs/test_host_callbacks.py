"""Host callbacks without JAX's CPU backend fail at trace time with the fix, not inside XLA."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from memorax.envs import Discrete, HostBackendUnavailableError, host_callbacks, require_host_backend
from memorax.envs.action_checks import validate_action


@pytest.fixture
def cpu_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretends the process was started with JAX_PLATFORMS=cuda (no CPU backend)."""
    monkeypatch.setattr(host_callbacks, "_cpu_backend_available", lambda: False)
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")


def test_host_backend_is_available_on_a_default_process() -> None:
    require_host_backend("anything")  # the CPU backend is always there by default


@pytest.mark.usefixtures("cpu_hidden")
def test_hidden_cpu_backend_names_the_setting_and_the_fix() -> None:
    with pytest.raises(HostBackendUnavailableError, match=r"JAX_PLATFORMS='cuda'.*cuda,cpu"):
        require_host_backend("test::Env.step")


@pytest.mark.usefixtures("cpu_hidden")
def test_discrete_action_check_refuses_at_trace_time_without_cpu_backend() -> None:
    step = jax.jit(lambda action: validate_action(Discrete(3), action, 2, "test::Env"))
    with pytest.raises(HostBackendUnavailableError, match="range check of discrete actions"):
        step(jnp.zeros((2,), jnp.int32))
