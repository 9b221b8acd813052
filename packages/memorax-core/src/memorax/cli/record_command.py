"""``memorax record RUN_DIR --out FILE.gif|.mp4``: watch a trained policy play."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jax
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
        "--episodes episodes; each frame is rendered (navix's renderer, or a plain "
        "gymnasium env with render_mode='rgb_array' for gymnasium ids and for gymnax's "
        "classic-control envs, which have gymnasium twins) and written to "
        "--out. GIF needs imageio, MP4 also imageio-ffmpeg: pip install "
        '"memorax-core[video]".',
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
) -> dict[str, Any]:
    """Renders ``episodes`` episodes of seed ``seed``'s policy into ``out``; returns
    ``{"frames", "returns", "shape"}``."""
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
    namespace, env_name = settings.env.split("::", 1)
    twin = GYMNASIUM_TWINS.get(settings.env)
    policy = Policy.load(run_dir, step=step, seed=seed)
    play = _play_gymnasium if namespace == "gymnasium" or twin else _play_memorax
    env_name = twin or env_name
    frames, returns = play(policy, settings, env_name, episodes, max_steps, progress, sample)
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


def _play_gymnasium(policy, settings, env_name, episodes, max_steps, progress, sample):
    """Episodes in a plain gymnasium env, the way a trained policy is deployed."""
    import gymnasium

    kwargs = {k: v for k, v in settings.env_kwargs.items() if k not in _BRIDGE_KWARGS}
    if settings.env in GYMNASIUM_TWINS:
        kwargs = {}  # gymnax's keyword arguments are its own
    env = gymnasium.make(env_name, render_mode="rgb_array", **kwargs)
    frames, returns = [], []
    try:
        try:
            env.reset(seed=0)
            env.render()
        except gymnasium.error.DependencyNotInstalled as error:
            raise ValueError(
                f"gymnasium cannot render {env_name}: {error}. The video extra brings what "
                'the classic-control envs need: pip install "memorax-core[video]".'
            ) from error
        for episode in range(episodes):
            observation, _ = env.reset(seed=episode)
            carry, start, reward, total = policy.initial_carry(), True, 0.0, 0.0
            frames.append(_rgb(env.render()))
            for _ in range(max_steps):
                key = jax.random.fold_in(jax.random.key(episode), len(frames))
                action, carry = policy.act(
                    key, observation, carry, start, reward, deterministic=not sample
                )
                observation, earned, terminated, truncated, _ = env.step(np.asarray(action))
                reward = float(earned)
                total += reward
                start = False
                frames.append(_rgb(env.render()))
                if terminated or truncated:
                    break
            returns.append(total)
            _say(progress, episode, episodes, total, len(frames))
    finally:
        env.close()
    return frames, returns


def _play_memorax(policy, settings, env_name, episodes, max_steps, progress, sample):
    """Episodes in the run's Memorax env (one copy), rendered by its backend."""
    from memorax.envs import make

    env, params = make(settings.env, num_envs=1, **settings.env_kwargs)
    try:
        reset = jax.jit(env.reset)
        step = jax.jit(env.step)
        render = jax.jit(env.render)
        frames, returns = [], []
        for episode in range(episodes):
            key = jax.random.key(episode)
            observation, state = reset(key, params)
            frames.append(_rgb(render(state, params)[0]))  # refuses envs without a renderer
            carry, start, reward, total = policy.initial_carry(), True, 0.0, 0.0
            for t in range(max_steps):
                act_key, step_key = jax.random.split(jax.random.fold_in(key, t + 1))
                action, carry = policy.act(
                    act_key, observation, carry, start, reward, deterministic=not sample
                )
                # The frame before the auto-reset: the episode's last state.
                result = step(step_key, state, action, params)
                total += float(result.reward[0])
                done = bool(result.terminated[0] | result.truncated[0])
                observation, state, reward = result.observation, result.state, result.reward
                start = False
                if done:
                    break
                frames.append(_rgb(render(state, params)[0]))
            returns.append(total)
            _say(progress, episode, episodes, total, len(frames))
    finally:
        env.close()
    return frames, returns


def _rgb(frame: Any) -> np.ndarray:
    """An ``[H, W, 3]`` uint8 frame, scaled up to at least 160 pixels high (navix draws
    small grids)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    scale = max(1, -(-160 // frame.shape[0]))
    return np.kron(frame, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else frame


def _say(progress: Any, episode: int, episodes: int, total: float, frames: int) -> None:
    if progress is not None:
        print(f"episode {episode + 1}/{episodes}: return {total:.4g}, {frames} frames so far",
              file=progress, flush=True)  # fmt: skip


def run_record(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Records and says where."""
    from memorax.envs import RenderingNotSupportedError

    try:
        result = record_run(
            options.run_dir, options.out, options.episodes, options.seed, options.step,
            options.fps, options.max_steps, progress=sys.stdout, sample=options.sample,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, RenderingNotSupportedError) as error:
        parser.error(str(error))
    height, width = result["shape"][:2]
    print(f"wrote {result['frames']} frames ({width} x {height}) to {options.out}")
    return 0
