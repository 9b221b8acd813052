"""``navix::<id>``: navix grid worlds under the Memorax contract.

navix's public ``step`` resets lazily: the step that ends an episode returns
its last timestep, and the *next* call returns a fresh episode's first
timestep regardless of the action. Memorax resets in the same step, so this
backend calls navix's one-transition ``_step`` directly and lets
:class:`~memorax.envs.VmappedEnvironment` do the reset.

navix marks each timestep TRANSITION, TRUNCATION (``t >= max_steps``) or
TERMINATION (the task's termination function fired; it wins over the time
limit on the same step). ``terminated`` is TERMINATION. The time limit is
read from the env params (:class:`NavixParams`), so it can be changed, or
vmapped, without rebuilding the env: ``truncated`` is ``t >= max_steps`` on
a step that did not terminate.

navix steps draw randomness (moving obstacles) from a key kept in its state;
the step key Memorax is given replaces it, so a step is a function of its
key like every other backend's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from memorax.envs import (
    Box,
    Discrete,
    EnvironmentKwargsError,
    Namespace,
    Space,
    UnknownEnvironmentError,
    VmappedEnvironment,
    install_command,
)
from memorax_envs_jax.params import route_kwargs

__all__ = ["NAMESPACE", "NavixParams", "make_navix"]


@struct.dataclass
class NavixParams:
    """Env params of a navix env.

    Attributes:
        max_steps: time limit; an episode is truncated on its ``max_steps``-th
            step. ``make(..., max_steps=...)`` sets it (navix's default is 100).
            Changing it here needs no rebuild; navix's optional time penalty
            (``penality_coeff``, zero in every registered id) keeps the value
            given to ``make``.
    """

    max_steps: jax.Array


def env_ids() -> list[str]:
    """navix's registered environment ids."""
    import navix

    return sorted(navix.registry())


def make_navix(env_id: str, num_envs: int, **kwargs: Any) -> tuple[VmappedEnvironment, NavixParams]:
    """Builds ``num_envs`` copies of a navix env.

    Keyword arguments go to navix's env constructor (``max_steps``,
    ``observation_fn``, ``reward_fn``, ``termination_fn``, ...).
    ``observation_fn`` may be a function or the name of one in
    ``navix.observations`` (``"symbolic"``, ``"rgb_first_person"``, ...).
    ``max_steps`` also sets the returned :class:`NavixParams`.

    Returns:
        ``(env, env_params)``: observations ``[num_envs, *obs_shape]`` as
        navix makes them (uint8 ``H x W x 3`` symbolic grids by default),
        discrete actions ``[num_envs]``.
    """
    import navix

    full_id = f"navix::{env_id}"
    if env_id not in navix.registry():
        raise UnknownEnvironmentError(
            f"Unknown environment id {env_id!r} in namespace 'navix'. "
            f"Available: {', '.join(env_ids())}"
        )
    probe = navix.make(env_id)
    constructor_names = [f.name for f in dataclasses.fields(probe) if f.name not in _DERIVED_FIELDS]
    routed = route_kwargs(full_id, kwargs, {"constructor arguments": constructor_names})
    constructor_kwargs = routed["constructor arguments"]
    observation_fn = constructor_kwargs.get("observation_fn")
    if isinstance(observation_fn, str):
        constructor_kwargs["observation_fn"] = _observation_fn(full_id, observation_fn)
    try:
        env = navix.make(env_id, **constructor_kwargs)
    except TypeError as error:
        # Registered ids fix some fields (a 5x5 room has height=5).
        raise EnvironmentKwargsError(
            f"make({full_id!r}): navix refused {sorted(constructor_kwargs)}: {error}. "
            f"The id fixes the grid layout; pick another id to change it."
        ) from error
    params = NavixParams(max_steps=jnp.asarray(env.max_steps, jnp.int32))
    termination = navix.StepType.TERMINATION

    def reset_single(key, params):
        timestep = env.reset(key)
        return timestep.observation, timestep

    def step_single(key, timestep, action, params):
        timestep = timestep.replace(state=timestep.state.replace(key=key))
        # navix's public step would return this episode's reset one call late.
        next_timestep = env._step(timestep, action)
        terminated = next_timestep.step_type == termination
        truncated = (next_timestep.t >= params.max_steps) & ~terminated
        return next_timestep.observation, next_timestep, next_timestep.reward, terminated, truncated

    wrapped = VmappedEnvironment(
        name=full_id,
        num_envs=num_envs,
        reset_single=reset_single,
        step_single=step_single,
        observation_space=_observation_space(env, navix),
        action_space=_action_space(env),
        params=params,
        # navix draws the whole grid in RGB from a state, whatever the observation.
        render_single=lambda timestep, params: navix.observations.rgb(timestep.state),
    )
    return wrapped, params


# The observation functions in ``navix.observations`` that navix knows the space of.
_OBSERVATION_NAMES = (
    "symbolic",
    "symbolic_first_person",
    "categorical",
    "categorical_first_person",
    "rgb",
    "rgb_first_person",
)

# Fields navix computes from the others; passing them is never what a user means.
_DERIVED_FIELDS = ("observation_space", "action_space", "reward_space")


def _observation_fn(full_id: str, name: str) -> Any:
    import navix

    if name not in _OBSERVATION_NAMES:
        raise EnvironmentKwargsError(
            f"make({full_id!r}): observation_fn={name!r} is not a navix observation. "
            f"Known: {', '.join(_OBSERVATION_NAMES)}; or pass a function of the navix state."
        )
    return getattr(navix.observations, name)


def _observation_space(env: Any, navix: Any) -> Space:
    """The exact shape and dtype navix returns.

    Bounds are tight where navix's encoding is known (symbolic grids) and the
    dtype's range otherwise (RGB images are exact that way).
    """
    observation = jax.eval_shape(lambda key: env.reset(key).observation, jax.random.key(0))
    shape, dtype = tuple(observation.shape), jnp.dtype(observation.dtype)
    observations = navix.observations
    if env.observation_fn in (observations.symbolic, observations.symbolic_first_person):
        # Channels are (entity tag, colour, entity state). Tags are bounded by
        # navix's entity ids; colours use 255 for "unset" and the state channel
        # has been seen at 254 (a navix door encoding), so those keep the uint8 range.
        max_tag = max(int(v) for k, v in vars(navix.entities.EntityIds).items() if k.isupper())
        high = np.broadcast_to(np.asarray([max_tag, 255, 255], np.float64), shape)
        return Box(low=0, high=high, shape=shape, dtype=dtype)
    if jnp.issubdtype(dtype, jnp.integer):
        info = jnp.iinfo(dtype)
        return Box(low=info.min, high=info.max, shape=shape, dtype=dtype)
    return Box(low=-np.inf, high=np.inf, shape=shape, dtype=jnp.float32)


def _action_space(env: Any) -> Space:
    return Discrete(n=len(env.action_set), dtype=jnp.int32)


NAMESPACE = Namespace(
    name="navix",
    factory=make_navix,
    env_ids=env_ids,
    requires=("navix",),
    install=install_command("memorax-envs-jax", "navix"),
    # Random starts, so the contract's "different keys, different episodes"
    # check applies; Dynamic-Obstacles also moves at random on every step.
    contract_ids=("Navix-Empty-Random-5x5-v0", "Navix-Dynamic-Obstacles-5x5-Random-v0"),
)
