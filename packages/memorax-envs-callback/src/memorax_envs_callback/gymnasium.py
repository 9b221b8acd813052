"""``gymnasium::<id>``: any registered gymnasium env, vectorized on the host.

The host env is ``gymnasium.make_vec(id, num_envs, ...)`` in gymnasium's
same-step auto-reset mode, which resets an ended copy inside the step that
ended it and reports the last observation in ``info["final_obs"]``, exactly
the Memorax contract. Copies run in this process by default
(``vectorization_mode="sync"``); ``vectorization_mode="async"`` runs each copy
in its own subprocess (started with ``spawn``, because forking a process that
runs JAX's threads can deadlock).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memorax.envs import Namespace, UnknownEnvironmentError, install_command
from memorax_envs_callback.bridge import CallbackEnvironment, HostStep
from memorax_envs_callback.constructor_kwargs import check_gymnasium_kwargs
from memorax_envs_callback.gymnasium_spaces import convert_space

__all__ = ["NAMESPACE", "GymnasiumHostEnv", "make_gymnasium"]

_MODES = ("sync", "async")


def env_ids() -> list[str]:
    """Ids registered with gymnasium (any other id, e.g. ``"module:Id-v0"``, is passed on)."""
    import gymnasium

    return sorted(gymnasium.registry)


class GymnasiumHostEnv:
    """A gymnasium vector env behind the bridge's host protocol.

    Args:
        env: a gymnasium ``VectorEnv`` whose ``autoreset_mode`` is ``SAME_STEP``.
        env_name: ``"namespace::id"``, for messages.
    """

    def __init__(self, env: Any, env_name: str):
        import gymnasium

        mode = env.metadata.get("autoreset_mode")
        if mode != gymnasium.vector.AutoresetMode.SAME_STEP:
            raise ValueError(
                f"{env_name}: the host vector env must auto-reset in the same step "
                f"(AutoresetMode.SAME_STEP), got {mode}."
            )
        self.env = env
        self.num_envs = env.num_envs
        self.observation_space = convert_space(
            env.single_observation_space, env_name, "observation"
        )
        self.action_space = convert_space(env.single_action_space, env_name, "action")

    def reset(self, seed: int) -> np.ndarray:
        """Resets every copy; copy ``i`` is seeded with ``seed + i``."""
        observation, _ = self.env.reset(seed=seed)
        return observation

    def step(self, action: np.ndarray) -> HostStep:
        """Steps every copy; ended copies are already reset."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        final = observation
        ended = info.get("_final_obs")
        # The array's own any(): np.any's dispatch costs about 1 us, a share of a 70 us step.
        if ended is not None and ended.any():
            final = np.array(observation, copy=True)
            for index in np.flatnonzero(ended):
                final[index] = info["final_obs"][index]
        return HostStep(observation, reward, terminated, truncated, final)

    def close(self) -> None:
        """Closes the vector env and its subprocesses."""
        self.env.close()


def make_gymnasium(
    env_id: str,
    num_envs: int,
    *,
    vectorization_mode: str = "sync",
    wrappers: Sequence[Callable[[Any], Any]] | None = None,
    vector_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[CallbackEnvironment, None]:
    """Builds ``num_envs`` copies of gymnasium env ``env_id`` behind the callback bridge.

    Args:
        env_id: a gymnasium id, e.g. ``"CartPole-v1"`` (``"module:Id-v0"`` imports a module first).
        num_envs: copies stepped together.
        vectorization_mode: ``"sync"`` (one process) or ``"async"`` (one subprocess per copy).
        wrappers: gymnasium wrappers applied to each copy (e.g. ``FlattenObservation``).
        vector_kwargs: extra arguments of ``SyncVectorEnv``/``AsyncVectorEnv``;
            ``autoreset_mode`` is fixed to same-step.
        **kwargs: passed to the env constructor through ``gymnasium.make``, e.g.
            ``max_episode_steps``.

    Returns:
        ``(env, None)``: callback envs have no env params.
    """
    import gymnasium

    name = f"gymnasium::{env_id}"
    if vectorization_mode not in _MODES:
        raise ValueError(
            f"make({name!r}): vectorization_mode must be one of {_MODES}, "
            f"got {vectorization_mode!r}."
        )
    vector_kwargs = dict(vector_kwargs or {})
    if vector_kwargs.pop("autoreset_mode", None) not in (None, "same_step", "SameStep"):
        raise ValueError(
            f"make({name!r}): autoreset_mode is fixed to same-step auto-reset, the Memorax "
            "contract; remove it from vector_kwargs."
        )
    vector_kwargs["autoreset_mode"] = gymnasium.vector.AutoresetMode.SAME_STEP
    if vectorization_mode == "async":
        vector_kwargs.setdefault("context", "spawn")
    check_gymnasium_kwargs(name, env_id, kwargs)

    def build() -> GymnasiumHostEnv:
        env = gymnasium.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode=vectorization_mode,
            vector_kwargs=dict(vector_kwargs),
            wrappers=wrappers,
            **kwargs,
        )
        try:
            return GymnasiumHostEnv(env, name)
        except BaseException:
            env.close()
            raise

    try:
        host = build()
    except (
        gymnasium.error.NameNotFound,
        gymnasium.error.NamespaceNotFound,
        gymnasium.error.VersionNotFound,
        gymnasium.error.DeprecatedEnv,
    ) as error:
        raise UnknownEnvironmentError(f"{name}: {error}") from error
    # Under jax.vmap each seed gets its own vector env, built the same way.
    return CallbackEnvironment(name, host, host_factory=build), None


NAMESPACE = Namespace(
    name="gymnasium",
    factory=make_gymnasium,
    env_ids=env_ids,
    requires=("gymnasium",),
    install=install_command("memorax-envs-callback", "gymnasium"),
    open_ended=True,
    contract_ids=("CartPole-v1", "Pendulum-v1", "FrozenLake-v1"),
)
