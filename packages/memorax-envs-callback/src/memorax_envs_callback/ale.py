"""``ale::<Game>``: Atari games through ale-py's native vector env.

The host env is ``ale_py.vector_env.AtariVectorEnv``: the emulators and the
standard preprocessing (frame skip, max-pooling, resizing, grayscale, frame
stack, no-op starts, reward clipping) run in ale-py's C++ threads, in its
same-step auto-reset mode. Every ``AtariVectorEnv`` option except
``autoreset_mode`` passes through ``make("ale::Pong", num_envs, **kwargs)``,
with ale-py's defaults (84x84 grayscale, 4 stacked frames, frame skip 4).

Observation layout: ``[num_envs, height, width, channels]`` uint8, the NHWC
layout ``flax.linen.Conv`` expects, with the stacked frames as channels
(``channels = stack_num`` for grayscale, ``3 * stack_num`` for RGB, frame-major:
channels ``3 * k .. 3 * k + 2`` are frame ``k``, oldest first). ale-py itself
returns frames first (``[num_envs, stack, height, width(, 3)]``); the host
hands those over unchanged and XLA transposes them (a
:class:`~memorax_envs_callback.bridge.DeviceLayout`), which is much cheaper
than a strided numpy copy every step.

Game ids are CamelCase (``"Pong"``, ``"MsPacman"``); ale-py's snake_case ROM
names (``"ms_pacman"``) are accepted too.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memorax.envs import (
    Box,
    EnvironmentKwargsError,
    Namespace,
    Space,
    UnknownEnvironmentError,
    install_command,
)
from memorax_envs_callback.bridge import CallbackEnvironment, DeviceLayout, HostStep
from memorax_envs_callback.gymnasium_spaces import convert_space

__all__ = ["NAMESPACE", "AtariHostEnv", "AtariScreens", "make_ale", "rom_name"]

# The bridge needs every game stepped together with same-step auto-reset.
_FIXED = frozenset({"autoreset_mode", "batch_size"})


def _camel_case(rom: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in rom.split("_"))


def rom_name(game: str) -> str:
    """ale-py's snake_case ROM name for ``game`` (``"MsPacman"`` -> ``"ms_pacman"``)."""
    if "_" in game or game.islower():
        return game
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", game).lower()


def env_ids() -> list[str]:
    """The games whose ROMs ale-py ships, in CamelCase."""
    from ale_py import roms

    return sorted(_camel_case(rom) for rom in roms.get_all_rom_ids())


class AtariHostEnv:
    """An ``AtariVectorEnv`` behind the bridge's host protocol, observations NHWC on the device.

    Args:
        env: an ``AtariVectorEnv`` built with ``autoreset_mode="SameStep"``.
        env_name: ``"namespace::id"``, for messages.
    """

    def __init__(self, env: Any, env_name: str):
        self.env = env
        self.num_envs = env.num_envs
        frames_first = tuple(env.single_observation_space.shape)  # (S, H, W) or (S, H, W, 3)
        stack, height, width = frames_first[:3]
        channels = stack * (frames_first[3] if len(frames_first) == 4 else 1)
        self.observation_space: Space = Box(
            low=0, high=255, shape=(height, width, channels), dtype=np.uint8
        )
        self.action_space = convert_space(env.single_action_space, env_name, "action")
        self.device_layout = DeviceLayout(
            host_shape=frames_first, to_space=functools.partial(_frames_to_nhwc, channels=channels)
        )

    def reset(self, seed: int) -> np.ndarray:
        """Resets every game; game ``i`` is seeded with ``seed + i``. Frames first."""
        observation, _ = self.env.reset(seed=seed)
        return observation

    def step(self, action: np.ndarray) -> HostStep:
        """Steps every game; ended games are already reset. Frames first."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        final = observation
        done = np.logical_or(terminated, truncated)
        if "final_obs" in info and np.any(done):
            mask = done.reshape(-1, *([1] * (observation.ndim - 1)))
            final = np.where(mask, info["final_obs"], observation)
        return HostStep(observation, reward, terminated, truncated, final)

    def close(self) -> None:
        """Stops the emulator threads."""
        self.env.close()


def _frames_to_nhwc(observation: jax.Array, channels: int) -> jax.Array:
    """``[N, S, H, W(, 3)]`` frame stacks to ``[N, H, W, channels]``, frame-major channels."""
    moved = jnp.moveaxis(observation, 1, 3)  # [N, H, W, S(, 3)]
    return moved.reshape(*moved.shape[:3], channels)


def _checked_rom(name: str, game: str, kwargs: dict[str, Any]) -> str:
    """ale-py's ROM name for ``game``, after checking the game and the ``AtariVectorEnv``
    options ``kwargs``; raises a clear error naming what to pass instead."""
    from ale_py import roms
    from ale_py.vector_env import AtariVectorEnv

    name = f"ale::{game}"
    rom = rom_name(game)
    if rom not in roms.get_all_rom_ids():
        raise UnknownEnvironmentError(
            f"{name}: ale-py has no ROM named {rom!r}. Games are CamelCase, e.g. 'ale::Pong'; "
            "memorax.envs.registry.get_namespace('ale').env_ids() lists them."
        )
    for fixed in sorted(_FIXED):
        if fixed in kwargs:
            raise ValueError(
                f"make({name!r}): {fixed} cannot be set; the bridge needs every game stepped "
                "together with same-step auto-reset."
            )
    accepted = set(inspect.signature(AtariVectorEnv).parameters) - {"game", "num_envs"}
    for key in sorted(set(kwargs) - accepted):
        close = difflib.get_close_matches(key, sorted(accepted), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise EnvironmentKwargsError(
            f"make({name!r}) got an unexpected keyword argument {key!r}.{hint} "
            f"AtariVectorEnv accepts: {', '.join(sorted(accepted - _FIXED))}."
        )
    return rom


def make_ale(game: str, num_envs: int, **kwargs: Any) -> tuple[CallbackEnvironment, None]:
    """Builds ``num_envs`` copies of an Atari game behind the callback bridge.

    Args:
        game: e.g. ``"Pong"``, ``"Breakout"``, ``"MsPacman"``.
        num_envs: copies stepped together.
        **kwargs: ``AtariVectorEnv`` options, e.g. ``frameskip``, ``stack_num``,
            ``grayscale``, ``img_height``, ``img_width``, ``noop_max``,
            ``repeat_action_probability``, ``max_num_frames_per_episode``
            (the time limit, in emulator frames), ``reward_clipping``,
            ``episodic_life``, ``continuous`` (Box actions), ``num_threads``.

    Returns:
        ``(env, None)``: callback envs have no env params.
    """
    from ale_py.vector_env import AtariVectorEnv

    name = f"ale::{game}"
    rom = _checked_rom(name, game, kwargs)

    def build() -> AtariHostEnv:
        env = AtariVectorEnv(rom, num_envs, autoreset_mode="SameStep", **kwargs)
        try:
            return AtariHostEnv(env, name)
        except BaseException:
            env.close()
            raise

    # Under jax.vmap each seed gets its own vector env, built the same way.
    return CallbackEnvironment(name, build(), host_factory=build), None


# Atari screens are 210 x 160 for every ROM ale-py ships.
_SCREEN = {"grayscale": False, "img_height": 210, "img_width": 160, "stack_num": 1}


class AtariScreens:
    """One Atari game played for ``memorax record``: the observations a policy was
    trained on, and the game's full colour screen at every step.

    ale-py's vector env has no renderer, so a second emulator of the same game,
    built with the same options except the image ones (``screen_options``:
    210 x 160 RGB, one frame), is seeded alike and given the same actions. No-op
    starts, sticky actions and frame skipping draw from the seed alone, not from
    the image options, so both emulators play the same game (tested).

    Args:
        game: e.g. ``"Pong"``.
        **kwargs: the run's ``AtariVectorEnv`` options, as ``make("ale::<game>")`` takes.
    """

    def __init__(self, game: str, screen_options: dict[str, Any] | None = None, **kwargs: Any):
        from ale_py.vector_env import AtariVectorEnv

        rom = _checked_rom(f"ale::{game}", game, kwargs)
        self._agent = AtariVectorEnv(rom, 1, **kwargs)
        try:
            self._screen = AtariVectorEnv(rom, 1, **{**kwargs, **(screen_options or _SCREEN)})
        except BaseException:
            self._agent.close()
            raise

    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Starts an episode: ``(observation [H, W, C], screen [210, 160, 3])``."""
        observation: np.ndarray = self._agent.reset(seed=seed)[0]
        screen: np.ndarray = self._screen.reset(seed=seed)[0]
        return _nhwc(observation)[0], _last_frame(screen)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, np.ndarray]:
        """``(observation, reward, done, screen)`` after ``action``; after ``done``, call
        :meth:`reset`."""
        action = np.asarray(action)[None]
        observation, reward, terminated, truncated, _ = self._agent.step(action)
        screen, *_ = self._screen.step(action)
        done = bool(terminated[0] or truncated[0])
        return _nhwc(observation)[0], float(reward[0]), done, _last_frame(screen)

    def close(self) -> None:
        """Stops both emulators."""
        self._agent.close()
        self._screen.close()


def _nhwc(observation: np.ndarray) -> np.ndarray:
    """The host's frames-first stacks ``[N, S, H, W(, 3)]`` in the device layout (the
    numpy twin of :func:`_frames_to_nhwc`)."""
    moved = np.moveaxis(observation, 1, 3)
    return moved.reshape(*moved.shape[:3], -1)


def _last_frame(screen: np.ndarray) -> np.ndarray:
    """The newest frame of copy 0: ``[H, W, 3]`` (or ``[H, W]`` for grayscale options)."""
    return screen[0, -1]


NAMESPACE = Namespace(
    name="ale",
    factory=make_ale,
    env_ids=env_ids,
    requires=("ale_py",),
    install=install_command("memorax-envs-callback", "ale"),
    open_ended=True,
    contract_ids=("Pong", "Breakout"),
)
