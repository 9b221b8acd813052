"""``xminigrid::<id>``: XLand-MiniGrid and its MiniGrid ports under the Memorax contract.

xminigrid's ``step`` is one transition without any reset (its auto-reset
lives in separate wrappers, which this backend leaves out: Memorax resets
in the same step). Each timestep is MID or LAST; a LAST step ended by the
task (goal reached, or in the Memory tasks either object reached) has
``discount == 0``, one ended by the time limit ``params.max_steps`` keeps
``discount == 1``. So ``terminated`` is ``discount == 0`` and ``truncated``
is any other LAST step; reaching the goal on the last allowed step is
terminated, as in xminigrid.

xminigrid's env params are a pytree whose size and time-limit fields are
static (not leaves): changing them recompiles, and they cannot be vmapped.
The XLand task itself (``ruleset``) is a leaf, so rulesets can be vmapped
or swapped without recompiling; each episode copies it at its reset, so a
new ruleset applies from the next episode on.

xminigrid steps draw no randomness; the step key Memorax passes is unused.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memorax.envs import (
    Box,
    Discrete,
    EnvironmentKwargsError,
    Namespace,
    UnknownEnvironmentError,
    VmappedEnvironment,
    install_command,
)
from memorax_envs_jax.params import route_kwargs

__all__ = ["NAMESPACE", "make_xminigrid"]

# Params every id takes from make(); the grid size and layout are fixed by the id.
_PARAM_NAMES = ("max_steps", "view_size")
# The XLand ids also take their task. Without one, xminigrid's default is an
# empty ruleset whose goal never fires: an episode that only ever times out.
_XLAND_PARAM_NAMES = (*_PARAM_NAMES, "ruleset")
_XLAND_PREFIX = "XLand-MiniGrid"


def env_ids() -> list[str]:
    """xminigrid's registered environment ids (XLand-MiniGrid-* and MiniGrid-*)."""
    import xminigrid

    return list(xminigrid.registered_environments())


def make_xminigrid(env_id: str, num_envs: int, **kwargs: Any) -> tuple[VmappedEnvironment, Any]:
    """Builds ``num_envs`` copies of an xminigrid env.

    Keyword arguments set fields of xminigrid's env params: ``max_steps``
    (the time limit; by default the id's own, e.g. ``5 * width**2`` for the
    Memory tasks) and ``view_size`` (the side of the agent's square view).
    ``XLand-MiniGrid-*`` ids also need ``ruleset``, the task: an
    ``xminigrid.types.RuleSet``, for example
    ``xminigrid.load_benchmark("trivial-1m").sample_ruleset(key)``.

    Returns:
        ``(env, env_params)``: observations ``[num_envs, view_size, view_size, 2]``
        uint8 (tile id, colour id of each cell the agent sees, the agent
        looking up), discrete actions ``[num_envs]`` (6 actions).
    """
    import xminigrid
    from xminigrid.core.constants import NUM_COLORS, NUM_TILES

    full_id = f"xminigrid::{env_id}"
    if env_id not in xminigrid.registered_environments():
        raise UnknownEnvironmentError(
            f"Unknown environment id {env_id!r} in namespace 'xminigrid'. "
            f"Available: {', '.join(env_ids())}"
        )
    is_xland = env_id.startswith(_XLAND_PREFIX)
    accepted = _XLAND_PARAM_NAMES if is_xland else _PARAM_NAMES
    overrides = route_kwargs(full_id, kwargs, {"env params": accepted})["env params"]
    if is_xland and "ruleset" not in overrides:
        raise EnvironmentKwargsError(
            f"make({full_id!r}) needs ruleset=..., the XLand task (its goal, rules and "
            "objects); without one no goal is ever reached. Pass an xminigrid.types.RuleSet, "
            'e.g. xminigrid.load_benchmark("trivial-1m").sample_ruleset(key), or use a '
            "MiniGrid-* id, whose task is built in."
        )
    env, params = xminigrid.make(env_id)
    params = params.replace(**overrides)
    _check_params(full_id, params)

    def reset_single(key, params):
        timestep = env.reset(params, key)
        return timestep.observation, timestep

    def step_single(key, timestep, action, params):
        next_timestep = env.step(params, timestep, action)
        terminated = next_timestep.discount == 0
        truncated = next_timestep.last() & ~terminated
        return next_timestep.observation, next_timestep, next_timestep.reward, terminated, truncated

    observation = jax.eval_shape(lambda key: env.reset(params, key).observation, jax.random.key(0))
    shape = tuple(observation.shape)
    # Channels are (tile id, colour id); out-of-map cells read as EMPTY (0, 0).
    high = np.broadcast_to(np.asarray([NUM_TILES - 1, NUM_COLORS - 1], np.float64), shape)
    wrapped = VmappedEnvironment(
        name=full_id,
        num_envs=num_envs,
        reset_single=reset_single,
        step_single=step_single,
        observation_space=Box(low=0, high=high, shape=shape, dtype=jnp.dtype(observation.dtype)),
        action_space=Discrete(n=env.num_actions(params), dtype=jnp.int32),
        params=params,
    )
    return wrapped, params


def _check_params(full_id: str, params: Any) -> None:
    """Refuses values xminigrid would accept silently and then misbehave on."""
    max_steps, view_size = params.max_steps, params.view_size
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise EnvironmentKwargsError(
            f"make({full_id!r}): max_steps must be a positive int (it is static in "
            f"xminigrid's params), got {max_steps!r}."
        )
    if isinstance(view_size, bool) or not isinstance(view_size, int) or view_size < 3:
        raise EnvironmentKwargsError(
            f"make({full_id!r}): view_size must be an odd int of at least 3 (the agent "
            f"sits in the middle of its view's bottom row), got {view_size!r}."
        )
    if view_size % 2 == 0:
        raise EnvironmentKwargsError(
            f"make({full_id!r}): view_size must be odd (the agent sits in the middle of "
            f"its view's bottom row), got {view_size}."
        )


NAMESPACE = Namespace(
    name="xminigrid",
    factory=make_xminigrid,
    env_ids=env_ids,
    requires=("xminigrid",),
    install=install_command("memorax-envs-jax", "xminigrid"),
    # A memory task (its own step function) and a random-start room (xminigrid's
    # generic goal-checking step): the two step paths every MiniGrid id takes.
    contract_ids=("MiniGrid-MemoryS8", "MiniGrid-EmptyRandom-5x5"),
)
