"""The batched environment contract every backend implements.

One ``Environment`` steps ``num_envs`` copies at once; every array it returns
has a leading ``num_envs`` axis. Episodes reset automatically in the same
step: when ``terminated | truncated`` is set, the returned observation is the
first of the next episode and ``info["final_observation"]`` holds the last
observation of the ended one (where no episode ended it equals the returned
observation, so ``info["final_observation"]`` is always the observation to
bootstrap from).
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from memorax.envs.action_checks import validate_action
from memorax.envs.capabilities import Capabilities
from memorax.envs.spaces import Space

__all__ = ["Environment", "RenderingNotSupportedError", "StepResult", "Wrapper"]


class StepResult(NamedTuple):
    """What ``Environment.step`` returns, in this order.

    Attributes:
        observation: ``[num_envs, *obs_shape]``, the first observation of a new
            episode where one ended.
        state: the new environment state.
        reward: ``[num_envs]`` float32.
        terminated: ``[num_envs]`` bool, the episode reached a terminal state
            (do not bootstrap).
        truncated: ``[num_envs]`` bool, the episode was cut short, e.g. by a
            time limit (bootstrap from ``info["final_observation"]``).
        info: dict with at least ``"final_observation"``.
    """

    observation: jax.Array
    state: Any
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    info: dict[str, Any]


class Environment(abc.ABC):
    """A batch of ``num_envs`` environment copies behind pure functions.

    Subclasses implement :meth:`_reset` and :meth:`_step`; the public
    :meth:`reset` and :meth:`step` validate input first so that mistakes give
    a message rather than an XLA error.

    Attributes:
        name: ``"namespace::id"``, used in messages.
        num_envs: number of copies stepped together.
        observation_space: space of one copy's observation.
        action_space: space of one copy's action.
        capabilities: what the backend supports (see :class:`Capabilities`).
    """

    name: str
    num_envs: int
    observation_space: Space
    action_space: Space
    capabilities: Capabilities

    def default_params(self) -> Any:
        """The env params ``make`` returns (``None`` for backends without params)."""
        return None

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        """Starts a new episode in every copy.

        Args:
            key: a single PRNG key; the backend derives one per copy.
            params: env params from ``make`` (or ``None``).

        Returns:
            ``(observation [num_envs, *obs_shape], state)``.
        """
        _check_key(key, self.name, "reset")
        return self._reset(key, params)

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None) -> StepResult:
        """Advances every copy by one step, resetting finished episodes in place.

        Args:
            key: a single PRNG key.
            state: the state from the previous ``reset`` or ``step``.
            action: ``[num_envs, *action_shape]``.
            params: env params from ``make`` (or ``None``).

        Returns:
            A :class:`StepResult` ``(obs, state, reward, terminated, truncated, info)``.
        """
        _check_key(key, self.name, "step")
        action = validate_action(self.action_space, action, self.num_envs, self.name)
        return StepResult(*self._step(key, state, action, params))

    def render(self, state: Any, params: Any = None) -> jax.Array:
        """RGB frames of every copy, ``[num_envs, H, W, 3]`` uint8 (jittable where the
        backend's renderer is).

        Raises:
            RenderingNotSupportedError: the backend has no renderer.
        """
        raise RenderingNotSupportedError(
            f"{self.name} has no renderer. Envs that render: navix::* (navix's RGB "
            "renderer), craftax::* (craftax's pixel renderer) and gymnax's *-MinAtar "
            "games; memorax record also plays ale::* games (full colour screens), "
            "gymnasium::* ids whose env supports render_mode='rgb_array', and gymnax's "
            "CartPole-v1, Acrobot-v1, MountainCar-v0 and Pendulum-v1 in their gymnasium twins."
        )

    def close(self) -> None:
        """Releases host resources (subprocesses, emulators). A no-op for JAX-native envs."""

    @abc.abstractmethod
    def _reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]:
        """Backend reset; input already validated."""

    @abc.abstractmethod
    def _step(self, key: jax.Array, state: Any, action: jax.Array, params: Any) -> tuple:
        """Backend step; action already validated and cast to the space's dtype."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, num_envs={self.num_envs})"

    def __enter__(self) -> Environment:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RenderingNotSupportedError(NotImplementedError):
    """The environment has no renderer."""


class Wrapper(Environment):
    """Base class of wrappers: forwards everything to the wrapped env."""

    def __init__(self, env: Environment):
        self.env = env

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes the wrapper does not define itself.
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.env.name

    @property
    def num_envs(self) -> int:  # type: ignore[override]
        return self.env.num_envs

    @property
    def observation_space(self) -> Space:  # type: ignore[override]
        return self.env.observation_space

    @property
    def action_space(self) -> Space:  # type: ignore[override]
        return self.env.action_space

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        return self.env.capabilities

    @property
    def unwrapped(self) -> Environment:
        """The innermost environment."""
        env = self.env
        while isinstance(env, Wrapper):
            env = env.env
        return env

    def default_params(self) -> Any:
        """The wrapped env's params."""
        return self.env.default_params()

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None) -> StepResult:
        """Advances every copy by one step (see :meth:`Environment.step`).

        A wrapper that keeps the wrapped env's action space leaves the action
        checks to the wrapped env: they run once per step, not once per layer
        (each discrete range check is a conditional on the device).
        """
        if self.action_space is not self.env.action_space:
            return super().step(key, state, action, params)
        _check_key(key, self.name, "step")
        return StepResult(*self._step(key, state, action, params))

    def close(self) -> None:
        """Closes the wrapped env."""
        self.env.close()

    def _reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]:
        return self.env.reset(key, params)

    def _step(self, key: jax.Array, state: Any, action: jax.Array, params: Any) -> tuple:
        return self.env.step(key, state, action, params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env!r})"


def _check_key(key: Any, env_name: str, method: str) -> None:
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    is_new_style = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    if (is_new_style and key.shape != ()) or (not is_new_style and key.shape != (2,)):
        raise ValueError(
            f"{env_name}.{method}: expected a single PRNG key, got an array of shape "
            f"{key.shape}. Pass one key (jax.random.key(0)); the env splits it per copy."
        )
