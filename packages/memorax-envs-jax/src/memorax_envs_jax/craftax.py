"""``craftax::<id>``: Craftax and Craftax-Classic under the Memorax contract.

craftax's ``done`` merges two kinds of end: the game ending (the player dies,
walks into lava in Classic, or beats the final boss in Craftax) and the time
limit ``params.max_timesteps``. The game-ending condition is recovered by
asking the env's ``is_terminal`` again with the time limit lifted:
``terminated`` is that condition and ``truncated`` is any other end. An
episode that dies on its last allowed step is terminated, not truncated.

The env is built without craftax's own auto-reset; Memorax resets in the
same step and keeps the last observation in ``info["final_observation"]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from memorax.envs import Namespace, UnknownEnvironmentError, VmappedEnvironment, install_command
from memorax_envs_jax.gymnax_spaces import convert_space
from memorax_envs_jax.params import route_kwargs

__all__ = ["NAMESPACE", "make_craftax"]

# craftax has no registry to list; these are the names its
# ``make_craftax_env_from_name`` builds without auto-reset. The
# ``*-AutoReset-v1`` aliases are left out: Memorax does the auto-reset.
CRAFTAX_IDS = (
    "Craftax-Symbolic-v1",
    "Craftax-Pixels-v1",
    "Craftax-Classic-Symbolic-v1",
    "Craftax-Classic-Pixels-v1",
)

_NO_TIME_LIMIT = 2**30


def env_ids() -> list[str]:
    """The craftax ids Memorax can build."""
    return list(CRAFTAX_IDS)


def make_craftax(env_id: str, num_envs: int, **kwargs: Any) -> tuple[VmappedEnvironment, Any]:
    """Builds ``num_envs`` copies of a craftax env.

    Keyword arguments that name a field of the env's ``EnvParams`` (for
    example ``max_timesteps`` or ``day_length``) override the returned env
    params, which ``reset`` and ``step`` read at run time. Those that name a
    field of its ``StaticEnvParams`` (for example ``map_size``) are fixed at
    construction and change the compiled shapes.

    Returns:
        ``(env, env_params)``: observations ``[num_envs, *obs_shape]`` float32
        in ``[0, 1]`` (a flat vector for symbolic ids, an ``H x W x 3`` image
        for pixel ids), discrete actions ``[num_envs]``.
    """
    from craftax.craftax_env import make_craftax_env_from_name

    full_id = f"craftax::{env_id}"
    if env_id not in CRAFTAX_IDS:
        raise UnknownEnvironmentError(
            f"Unknown environment id {env_id!r} in namespace 'craftax'. "
            f"Available: {', '.join(CRAFTAX_IDS)}"
        )
    probe = make_craftax_env_from_name(env_id, auto_reset=False)
    default_params = probe.default_params
    default_static = probe.default_static_params()
    routed = route_kwargs(
        full_id,
        kwargs,
        {
            "env params": _field_names(default_params),
            "static env params": _field_names(default_static),
        },
    )
    if routed["static env params"]:
        static = default_static.replace(**routed["static env params"])
        env = type(probe)(static_env_params=static)
    else:
        env = probe
    params = default_params.replace(**routed["env params"])

    def reset_single(key, params):
        return env.reset_env(key, params)

    def step_single(key, state, action, params):
        observation, next_state, reward, done, _ = env.step_env(key, state, action, params)
        unlimited = params.replace(max_timesteps=_NO_TIME_LIMIT)
        terminated = env.is_terminal(next_state, unlimited)
        truncated = done & ~terminated
        return observation, next_state, reward, terminated, truncated

    wrapped = VmappedEnvironment(
        name=full_id,
        num_envs=num_envs,
        reset_single=reset_single,
        step_single=step_single,
        observation_space=convert_space(env.observation_space(params)),
        action_space=convert_space(env.action_space(params)),
        params=params,
        render_single=_pixel_renderer(env_id),
    )
    return wrapped, params


def _pixel_renderer(env_id: str) -> Any:
    """``(state, params) -> [H, W, 3]`` uint8: craftax's own pixel renderer of the
    player's view at its image size (16 pixels a block; the first call loads and
    caches craftax's textures)."""
    import jax.numpy as jnp

    if "Classic" in env_id:
        from craftax.craftax_classic.constants import BLOCK_PIXEL_SIZE_IMG
        from craftax.craftax_classic.renderer import make_craftax_pixel_renderer
    else:
        from craftax.craftax.constants import BLOCK_PIXEL_SIZE_IMG
        from craftax.craftax.renderer import make_craftax_pixel_renderer
    render_pixels = make_craftax_pixel_renderer(BLOCK_PIXEL_SIZE_IMG)

    def render_single(state: Any, params: Any) -> Any:
        return jnp.clip(render_pixels(state), 0, 255).astype(jnp.uint8)

    return render_single


def _field_names(dataclass_instance: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(dataclass_instance)]


NAMESPACE = Namespace(
    name="craftax",
    factory=make_craftax,
    env_ids=env_ids,
    requires=("craftax",),
    install=install_command("memorax-envs-jax", "craftax"),
    # Craftax compiles slowly (about 40 s for Classic, 75 s for the full game
    # on two CPU cores), so the contract runs the smaller Classic game only.
    contract_ids=("Craftax-Classic-Symbolic-v1",),
)
