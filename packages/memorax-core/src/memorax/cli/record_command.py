"""``memorax record RUN_DIR --out FILE.gif|.mp4``: watch a trained policy play."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["add_record_command", "record_run"]

# Keyword arguments of the Memorax gymnasium backend that gymnasium.make does not take.
_BRIDGE_KWARGS = ("vectorization_mode",)
# gymnax's classic-control envs follow gymnasium's equations, observations and actions:
# their policies play (and render) in gymnasium's twin.
GYMNASIUM_TWINS = {
    "gymnax::CartPole-v1": "CartPole-v1",
    "gymnax::Acrobot-v1": "Acrobot-v1",
    "gymnax::MountainCar-v0": "MountainCar-v0",
    "gymnax::Pendulum-v1": "Pendulum-v1",
}
_FORMATS = (".gif", ".mp4")


def add_record_command(commands: argparse._SubParsersAction) -> None:
    """Registers ``record`` on the ``memorax`` parser."""
    parser = commands.add_parser(
        "record",
        help="render episodes of a run's trained policy to a GIF or MP4",
        description="One seed's deterministic policy from a run's checkpoint plays "
        "--episodes episodes; each frame is rendered (navix's and craftax's renderers, "
        "MinAtar's grid, ALE's full colour screen, or a plain gymnasium env with "
        "render_mode='rgb_array' for gymnasium ids and for gymnax's classic-control "
        "envs, which have gymnasium twins) and written to --out. GIF needs imageio, MP4 "
        'also imageio-ffmpeg: pip install "memorax-core[video]".',
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("--out", type=Path, required=True, help="a .gif or .mp4 file")
    parser.add_argument("--episodes", type=int, default=1, help="episodes (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed to play (default 0)")
    parser.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    parser.add_argument("--fps", type=int, default=30, help="frames per second (default: 30)")
    parser.add_argument(
        "--max-steps", type=int, default=1000, help="steps per episode at most (default: 1000)"
    )
    parser.add_argument(
        "--sample",
        action="store_true",
        help="sample actions from the policy (PPO, SAC) instead of its deterministic mode",
    )
    parser.add_argument(
        "--memory-overlay",
        action="store_true",
        help="draw the norm of the policy's memory at each step under the frames",
    )
    parser.set_defaults(run=run_record, command_parser=parser)


def record_run(
    run_dir: Path,
    out: Path,
    episodes: int = 1,
    seed: int = 0,
    step: int | None = None,
    fps: int = 30,
    max_steps: int = 1000,
    progress: Any = None,
    sample: bool = False,
    memory_overlay: bool = False,
) -> dict[str, Any]:
    """Renders ``episodes`` episodes of seed ``seed``'s policy into ``out``; returns
    ``{"frames", "returns", "shape"}``.

    ``memory_overlay`` draws, under each frame, the norm of the policy's memory
    (its torso carry) at every step of the episode so far.
    """
    from memorax.cli.run_settings import RUN_FILE, RunSettings
    from memorax.policy import Policy

    out = Path(out)
    if out.suffix.lower() not in _FORMATS:
        raise ValueError(f"--out {out}: write a .gif or an .mp4 file.")
    if episodes < 1 or max_steps < 1 or fps < 1:
        raise ValueError("--episodes, --max-steps and --fps must be positive integers.")
    writer = _writer(out)  # before any work: a missing imageio is said at once
    run_file = Path(run_dir) / RUN_FILE
    if not run_file.is_file():
        raise FileNotFoundError(f"{run_dir} has no {RUN_FILE}: pass a `memorax train` run.")
    settings = RunSettings.from_json(run_file.read_text())
    policy = Policy.load(run_dir, step=step, seed=seed)
    if memory_overlay and not jax.tree.leaves(policy.initial_carry().torso):
        raise ValueError(
            f"--memory-overlay: the run's {settings.torso} torso has no memory to draw; "
            "record without it."
        )
    player = _player(settings)
    try:
        bar = _Progress(progress, episodes, max_steps)
        frames, returns = _play(policy, player, episodes, max_steps, sample, bar, memory_overlay)
    finally:
        player.close()
    writer(out, frames, fps)
    return {"frames": len(frames), "returns": returns, "shape": tuple(frames[0].shape)}


def _writer(out: Path) -> Any:
    """``write(path, frames, fps)`` with imageio, or a clear error naming the extra."""
    try:
        import imageio.v2 as imageio
    except ImportError as error:
        raise ValueError(
            'memorax record needs imageio: pip install "memorax-core[video]" (from a '
            "clone: --extra video with uv)."
        ) from error
    if out.suffix.lower() == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError as error:
            raise ValueError(
                'MP4 needs imageio-ffmpeg: pip install "memorax-core[video]", or write a .gif.'
            ) from error

    def write(path: Path, frames: list[Any], fps: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".gif":
            imageio.mimsave(path, frames, duration=1000 / fps, loop=0)
        else:
            imageio.mimsave(path, frames, fps=fps, macro_block_size=1)

    return write


def _player(settings: Any) -> Any:
    """The env the policy plays in while its frames are drawn, by the run's env id."""
    namespace, env_name = settings.env.split("::", 1)
    if namespace == "gymnasium" or settings.env in GYMNASIUM_TWINS:
        return _GymnasiumPlayer(settings, GYMNASIUM_TWINS.get(settings.env, env_name))
    if namespace == "ale":
        try:
            from memorax_envs_callback.ale import AtariScreens
        except ImportError as error:
            raise ValueError(
                'Recording ale:: runs needs ale-py: pip install "memorax-envs-callback[ale]".'
            ) from error
        return AtariScreens(env_name, **settings.env_kwargs)
    return _MemoraxPlayer(settings)


def _play(policy, player, episodes, max_steps, sample, bar, memory_overlay):
    """Plays ``episodes`` episodes; returns ``(frames, returns)``. Each episode gives
    its first frame and one frame per step (``player.step`` gives ``None`` where the
    env has no frame of the state that ended the episode)."""
    frames, returns = [], []
    for episode in range(episodes):
        observation, frame = player.reset(episode)
        carry, start, reward, total = policy.initial_carry(), True, 0.0, 0.0
        # The memory's norm costs a device round trip a step: only when it is drawn.
        norms = [_memory_norm(carry)] if memory_overlay else None
        frames.append(_framed(frame, norms))
        for t in range(max_steps):
            key = jax.random.fold_in(jax.random.key(episode), t)
            action, carry = policy.act(
                key, observation, carry, start, reward, deterministic=not sample
            )
            observation, reward, done, frame = player.step(action)
            total += reward
            start = False
            if norms is not None:
                norms.append(_memory_norm(carry))
            if frame is not None:
                frames.append(_framed(frame, norms))
            bar.update(episode, t + 1, len(frames))
            if done:
                break
        returns.append(total)
        bar.end_episode(episode, total, len(frames))
    return frames, returns


class _GymnasiumPlayer:
    """A plain gymnasium env with ``render_mode="rgb_array"``: how a policy is deployed."""

    def __init__(self, settings: Any, env_name: str):
        import gymnasium

        kwargs = {k: v for k, v in settings.env_kwargs.items() if k not in _BRIDGE_KWARGS}
        if settings.env in GYMNASIUM_TWINS:
            kwargs = {}  # gymnax's keyword arguments are its own
        self.env = gymnasium.make(env_name, render_mode="rgb_array", **kwargs)
        try:
            self.env.reset(seed=0)
            self.env.render()
        except gymnasium.error.DependencyNotInstalled as error:
            self.env.close()
            raise ValueError(
                f"gymnasium cannot render {env_name}: {error}. The video extra brings what "
                'the classic-control envs need: pip install "memorax-core[video]".'
            ) from error

    def reset(self, episode: int) -> tuple[Any, Any]:
        observation, _ = self.env.reset(seed=episode)
        return observation, self.env.render()

    def step(self, action: Any) -> tuple[Any, float, bool, Any]:
        observation, reward, terminated, truncated, _ = self.env.step(np.asarray(action))
        return observation, float(reward), bool(terminated or truncated), self.env.render()

    def close(self) -> None:
        self.env.close()


class _MemoraxPlayer:
    """One copy of the run's Memorax env, drawn by its backend's renderer."""

    def __init__(self, settings: Any):
        from memorax.envs import make

        self.env, self.params = make(settings.env, num_envs=1, **settings.env_kwargs)
        self._reset = jax.jit(self.env.reset)
        self._step = jax.jit(self.env.step)
        self._render = jax.jit(self.env.render)
        self.state: Any = None
        self.key: Any = None
        self.t = 0

    def reset(self, episode: int) -> tuple[Any, Any]:
        self.key, self.t = jax.random.key(episode), 0
        observation, self.state = self._reset(self.key, self.params)
        # Raises RenderingNotSupportedError, naming the envs that render, before any step.
        return observation, self._render(self.state, self.params)[0]

    def step(self, action: Any) -> tuple[Any, float, bool, Any]:
        self.t += 1
        result = self._step(jax.random.fold_in(self.key, self.t), self.state, action, self.params)
        self.state = result.state
        done = bool(result.terminated[0] | result.truncated[0])
        # After the end the state is the next episode's (auto-reset): no frame of it.
        frame = None if done else self._render(self.state, self.params)[0]
        return result.observation, float(result.reward[0]), done, frame

    def close(self) -> None:
        self.env.close()


def _memory_norm(carry: Any) -> float:
    """The L2 norm of every floating-point leaf of the policy's torso carry."""
    leaves = [
        leaf for leaf in jax.tree.leaves(carry.torso) if jnp.issubdtype(leaf.dtype, jnp.floating)
    ]
    return float(jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in leaves))) if leaves else 0.0


def _framed(frame: Any, norms: list[float] | None) -> np.ndarray:
    """The frame as ``[H, W, 3]`` uint8, with the memory-norm strip under it if asked."""
    frame = _rgb(frame)
    if norms is None:
        return frame
    return np.concatenate([frame, _norm_strip(norms, frame.shape[1])], axis=0)


_STRIP_HEIGHT = 40


def _norm_strip(norms: list[float], width: int) -> np.ndarray:
    """A ``[40, width, 3]`` plot of the memory's norm over the episode so far: step
    ``t`` at ``x = t / max(len, 1)`` of the width, heights scaled to the largest norm."""
    strip = np.full((_STRIP_HEIGHT, width, 3), 24, np.uint8)
    values = np.asarray(norms, np.float64)
    top = values.max() if values.size and values.max() > 0 else 1.0
    span = max(len(values) - 1, 1)
    columns = np.arange(width)
    # Each column shows the step under it (steps spread over the width as the episode grows).
    steps = np.minimum((columns * span) // max(width - 1, 1), len(values) - 1)
    heights = np.round(values[steps] / top * (_STRIP_HEIGHT - 4)).astype(int)
    for column, height in zip(columns, heights, strict=True):
        strip[_STRIP_HEIGHT - 2 - height : _STRIP_HEIGHT - 2, column] = (90, 200, 255)
    return strip


def _rgb(frame: Any) -> np.ndarray:
    """An ``[H, W, 3]`` uint8 frame, scaled up to at least 160 pixels high (navix draws
    small grids)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    scale = max(1, -(-160 // frame.shape[0]))
    return np.kron(frame, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else frame


class _Progress:
    """A progress bar over episodes on a terminal (one line per episode elsewhere)."""

    def __init__(self, stream: Any, episodes: int, max_steps: int):
        self.stream, self.episodes, self.max_steps = stream, episodes, max_steps
        self.live = stream is not None and getattr(stream, "isatty", lambda: False)()

    def update(self, episode: int, step: int, frames: int) -> None:
        if not self.live or step % 10:
            return
        done = (episode + step / self.max_steps) / self.episodes
        bar = "#" * int(30 * done)
        print(f"\rrecording [{bar:<30}] episode {episode + 1}/{self.episodes}, {frames} frames",
              end="", file=self.stream, flush=True)  # fmt: skip

    def end_episode(self, episode: int, total: float, frames: int) -> None:
        if self.stream is None:
            return
        if self.live:
            print("\r" + " " * 79 + "\r", end="", file=self.stream)
        print(f"episode {episode + 1}/{self.episodes}: return {total:.4g}, {frames} frames so far",
              file=self.stream, flush=True)  # fmt: skip


def run_record(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Records and says where."""
    from memorax.envs import RenderingNotSupportedError

    try:
        result = record_run(
            options.run_dir, options.out, options.episodes, options.seed, options.step,
            options.fps, options.max_steps, progress=sys.stdout, sample=options.sample,
            memory_overlay=options.memory_overlay,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, RenderingNotSupportedError) as error:
        parser.error(str(error))
    height, width = result["shape"][:2]
    print(f"wrote {result['frames']} frames ({width} x {height}) to {options.out}")
    return 0
