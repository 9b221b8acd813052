"""``gymnax::<id>``: gymnax environments under the Memorax contract.

gymnax (1.0 and later) reports the task's own end from ``step_env`` and the
time limit through ``is_truncated``: ``terminated`` is the first,
``truncated`` the second when the first is not set. (gymnax 0.0.x merged the
two into one ``done``; it is no longer supported.)

For a few ids ``max_steps_in_episode`` is not a limit laid over the task but
the task's own fixed length (bsuite's DiscountingChain, MinAtar's Freeway
game timer, the meta-RL trials of the ``misc`` bandits, point robot and
maze). Nothing follows their last step, so reaching it is ``terminated``;
:data:`FIXED_HORIZON_IDS` lists them with the reason. Any other id,
including one a later gymnax adds, keeps the time-limit reading.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp

from memorax.envs import Box, Namespace, Space, VmappedEnvironment, install_command
from memorax_envs_jax.gymnax_spaces import convert_space
from memorax_envs_jax.params import split_params_kwargs

__all__ = ["FIXED_HORIZON_IDS", "NAMESPACE", "make_gymnax"]

FIXED_HORIZON_IDS: Mapping[str, str] = MappingProxyType(
    {
        "DiscountingChain-bsuite": "bsuite returns dm_env.termination after its fixed n_steps",
        "Freeway-MinAtar": "MinAtar's own 2500-frame game timer ends the game",
        "BernoulliBandit-misc": "a meta-RL trial of a fixed number of pulls (Wang et al. 2017)",
        "GaussianBandit-misc": "a meta-RL trial of a fixed lifetime (Lange & Sprekeler 2022)",
        "PointRobot-misc": "a fixed-length meta-RL trial with one goal (Dorfman et al. 2021)",
        "MetaMaze-misc": "a fixed-length meta-RL trial with one goal (Miconi et al. 2019)",
    }
)
"""gymnax ids whose ``max_steps_in_episode`` is the task's own length, with why.

Reaching it ends these episodes with ``terminated=True, truncated=False``:
bootstrapping past it would value steps the task does not have.
"""


def _observation_space(env_id: str, env: Any, params: Any) -> Space:
    """gymnax's declared observation space, corrected where it is wrong.

    MemoryChain-bsuite shows its context bits as -1/+1 but declares [0, 2].
    """
    space = convert_space(env.observation_space(params))
    if env_id == "MemoryChain-bsuite":
        high = max(1, env.num_bits - 1)
        return Box(low=-1.0, high=float(high), shape=space.shape, dtype=space.dtype)
    return space


def env_ids() -> list[str]:
    """gymnax's registered environment ids."""
    import gymnax

    return list(gymnax.registered_envs)


def make_gymnax(env_id: str, num_envs: int, **kwargs: Any) -> tuple[VmappedEnvironment, Any]:
    """Builds ``num_envs`` copies of a gymnax env.

    Keyword arguments that name a field of the env's ``EnvParams`` (for
    example ``memory_length`` of MemoryChain-bsuite or
    ``max_steps_in_episode``) override the default params; the rest go to the
    env's constructor.
    """
    import gymnax

    probe, default_params = gymnax.make(env_id)
    params_kwargs, constructor_kwargs = split_params_kwargs(
        f"gymnax::{env_id}", default_params, type(probe), kwargs
    )
    env, default_params = gymnax.make(env_id, **constructor_kwargs)
    params = default_params.replace(**params_kwargs) if params_kwargs else default_params
    # Where the horizon belongs to the task, every end gymnax reports is a termination.
    has_time_limit = _has_field(params, "max_steps_in_episode") and env_id not in FIXED_HORIZON_IDS

    def reset_single(key, params):
        return env.reset_env(key, params)

    def step_single(key, state, action, params):
        # The one place that reads gymnax's step: step_env's flag is the task's own end
        # (gymnax >= 1.0), is_truncated the time limit.
        observation, next_state, reward, terminated, _ = env.step_env(key, state, action, params)
        terminated = jnp.asarray(terminated, bool)
        if _has_field(params, "max_steps_in_episode"):
            limit_reached = jnp.asarray(env.is_truncated(next_state, params), bool)
        else:
            limit_reached = jnp.zeros_like(terminated)
        if not has_time_limit:  # the horizon is the task's own length: reaching it ends it
            terminated = terminated | limit_reached
            return observation, next_state, reward, terminated, jnp.zeros_like(terminated)
        return observation, next_state, reward, terminated, limit_reached & ~terminated

    wrapped = VmappedEnvironment(
        name=f"gymnax::{env_id}",
        num_envs=num_envs,
        reset_single=reset_single,
        step_single=step_single,
        observation_space=_observation_space(env_id, env, params),
        action_space=convert_space(env.action_space(params)),
        params=params,
        render_single=_minatar_renderer(env) if env_id.endswith("-MinAtar") else None,
    )
    return wrapped, params


# Background black, then one colour per object channel (MinAtar has at most 10).
_MINATAR_COLOURS = (
    (0, 0, 0), (230, 80, 60), (250, 190, 50), (90, 200, 90), (70, 150, 240),
    (200, 110, 230), (240, 240, 240), (60, 210, 210), (250, 130, 180), (160, 120, 70),
    (140, 140, 140),
)  # fmt: skip


def _minatar_renderer(env: Any) -> Any:
    """``(state, params) -> [10, 10, 3]`` uint8: MinAtar's whole game is its observation
    grid (one channel per kind of object), drawn with a colour per channel, as gymnax's
    own matplotlib visualiser does."""
    palette = jnp.asarray(_MINATAR_COLOURS, jnp.uint8)

    def render_single(state: Any, params: Any) -> jax.Array:
        grid = env.get_obs(state, params)  # [10, 10, channels] in {0, 1}
        # Where objects overlap, the last channel's colour shows.
        channel = grid.shape[-1] - jnp.argmax(grid[..., ::-1], axis=-1)
        return palette[jnp.where(jnp.any(grid > 0, axis=-1), channel, 0)]

    return render_single


def _has_field(params: Any, name: str) -> bool:
    return dataclasses.is_dataclass(params) and name in {f.name for f in dataclasses.fields(params)}


NAMESPACE = Namespace(
    name="gymnax",
    factory=make_gymnax,
    env_ids=env_ids,
    requires=("gymnax",),
    install=install_command("memorax-envs-jax", "gymnax"),
    contract_ids=("CartPole-v1", "Pendulum-v1", "MemoryChain-bsuite"),
)
