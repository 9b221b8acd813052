"""A trained agent back out of its run directory: Policy, `memorax eval`, `memorax record`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import gymnasium
import imageio.v2 as imageio
import imageio_ffmpeg
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.algorithms.acting import StepInput, apply_network
from memorax.cli import main
from memorax.cli.agents import ALGORITHMS
from memorax.cli.record_command import record_run
from memorax.envs import RenderingNotSupportedError, make
from memorax.policy import Policy

# --------------------------------------------------------------- acting as training did


CASES = {
    # (algo, torso, env): every agent, feed-forward and memory torsos, discrete and continuous
    "ppo-gru": ("ppo", "gru", "gymnax::CartPole-v1"),
    "ppo-mlp-continuous": ("ppo", "mlp", "gymnax::Pendulum-v1"),
    "pqn-lru": ("pqn", "lru", "gymnax::CartPole-v1"),
    "dqn-mlp": ("dqn", "mlp", "gymnax::CartPole-v1"),
    "r2d2-gru": ("r2d2", "gru", "gymnax::CartPole-v1"),
    "sac-gru-continuous": ("sac", "gru", "gymnax::Pendulum-v1"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_step_by_step_actions_equal_the_network_on_the_whole_sequence(case):
    """The policy's carry, previous action, reward and episode starts are what the network
    saw in training: acting step by step gives the greedy actions of one pass over the
    sequence."""
    algo, torso, env_id = CASES[case]
    spec = ALGORITHMS[algo]
    config = spec.config_class(**{**spec.defaults_for(torso), "num_envs": 4})
    env, params = make(env_id, num_envs=4)
    agent = spec.build(config, env, params, torso, 16, 1e-3, None)
    state = agent.init(jax.random.key(0))
    policy = Policy(agent, agent._policy_params(state))
    length, batch = 6, 2
    keys = jax.random.split(jax.random.key(1), 2)
    shape = (length, batch, *env.observation_space.shape)
    observations = jax.random.normal(keys[0], shape, jnp.float32)
    rewards = jax.random.normal(keys[1], (length, batch))
    starts = jnp.zeros((length, batch), bool).at[0].set(True).at[3, 1].set(True)
    carry, actions, previous = policy.initial_carry(batch), [], []
    for t in range(length):
        reward = rewards[t - 1] if t else jnp.zeros(batch)
        action, carry = policy.act(jax.random.key(t), observations[t], carry, starts[t], reward)
        actions.append(action)  # the env's action
        previous.append(carry.previous_action)  # the policy's, which the network sees next
    # The same inputs as one [B, T] sequence, as the training updates feed them.
    zero = jnp.zeros_like(previous[0])
    previous_actions = jnp.stack([zero, *previous[:-1]])
    reset = starts.reshape(starts.shape + (1,) * (previous_actions.ndim - starts.ndim))
    previous_rewards = jnp.concatenate([jnp.zeros((1, batch)), rewards[:-1]])
    inputs = StepInput(
        observation=observations,
        episode_start=starts,
        previous_action=jnp.where(reset, 0, previous_actions),
        previous_reward=jnp.where(starts, 0.0, previous_rewards),
    )
    sequence = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), inputs)  # [B, T, ...]
    _, output = apply_network(
        policy.network, policy.params, sequence, policy.network.initialize_carry(batch)
    )
    for t in range(length):
        step_output = jax.tree.map(lambda x, t=t: x[:, t : t + 1], output)
        expected = agent._env_action(agent._greedy_action(step_output))
        np.testing.assert_allclose(np.asarray(actions[t]), np.asarray(expected), atol=1e-5)


def test_q_agents_refuse_sampled_actions_and_policies_refuse_unknown_seeds(tmp_path):
    spec = ALGORITHMS["dqn"]
    env, params = make("gymnax::CartPole-v1", num_envs=2)
    config = spec.config_class(**{**spec.defaults_for("mlp"), "num_envs": 2})
    agent = spec.build(config, env, params, "mlp", 16, 1e-3, None)
    policy = Policy(agent, agent._policy_params(agent.init(jax.random.key(0))))
    with pytest.raises(ValueError, match="acts greedily on its Q-values"):
        policy.act(jax.random.key(0), np.zeros(4), policy.initial_carry(), True,
                   deterministic=False)  # fmt: skip
    with pytest.raises(FileNotFoundError, match=r"has no run\.json"):
        Policy.load(tmp_path)


def test_an_env_without_a_renderer_names_the_ones_that_have_one():
    env, params = make("gymnax::MemoryChain-bsuite", num_envs=1)
    _, state = env.reset(jax.random.key(0), params)
    with pytest.raises(RenderingNotSupportedError, match=r"navix::\*"):
        env.render(state, params)


def test_navix_renders_every_copy():
    env, params = make("navix::Navix-Empty-5x5-v0", num_envs=3)
    _, state = env.reset(jax.random.key(0), params)
    frames = jax.jit(env.render)(state, params)
    assert frames.shape == (3, 40, 40, 3) and frames.dtype == jnp.uint8
    assert int(frames.max()) > 0


# ------------------------------------------------- a trained run: deploy, evaluate, record


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory) -> Path:
    """The main job's PPO on gymnax CartPole, trained until its policy balances (2 seeds)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--seeds", "2", "--total-steps", "150000", "--out", str(run)]) == 0
    return run


def _reported_evaluation(run: Path) -> dict[int, float]:
    """The run's own last evaluation return per seed (evaluation/metrics.csv)."""
    with open(run / "evaluation" / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    last = max(int(row["step"]) for row in rows)
    return {int(r["seed"]): float(r["evaluation_return"]) for r in rows if int(r["step"]) == last}


@pytest.mark.slow
def test_a_loaded_policy_plays_a_plain_gymnasium_cartpole_as_the_run_reported(cartpole_run):
    reported = _reported_evaluation(cartpole_run)
    for seed in (0, 1):
        policy = Policy.load(cartpole_run, seed=seed)
        env = gymnasium.make("CartPole-v1")
        returns = []
        for episode in range(3):
            observation, _ = env.reset(seed=episode)
            carry, start, total, done = policy.initial_carry(), True, 0.0, False
            while not done:
                action, carry = policy.act(jax.random.key(0), observation, carry, start)
                observation, reward, terminated, truncated, _ = env.step(int(action))
                total, start, done = total + reward, False, terminated or truncated
            returns.append(total)
        env.close()
        # The run reports a balanced pole (500); the deployed policy balances it too.
        assert reported[seed] == 500.0
        assert returns == [reported[seed]] * 3
    with pytest.raises(ValueError, match="one of the run's seeds, 0 to 1; got 2"):
        Policy.load(cartpole_run, seed=2)


@pytest.mark.slow
def test_eval_plays_complete_episodes_per_seed_and_writes_them(cartpole_run, capsys):
    assert main(["eval", str(cartpole_run), "--episodes", "5", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "| seed | return mean |" in printed and "iqm of the seeds' mean returns" in printed
    files = list((cartpole_run / "evaluation").glob("eval-step*.json"))
    assert len(files) == 1
    result = json.loads(files[0].read_text())
    reported = _reported_evaluation(cartpole_run)
    assert [len(seed["returns"]) for seed in result["seeds"]] == [5, 5]
    assert [seed["return_mean"] for seed in result["seeds"]] == [reported[0], reported[1]]
    # A fixed evaluation seed gives the same file again.
    assert main(["eval", str(cartpole_run), "--episodes", "5", "--seed", "3"]) == 0
    assert json.loads(files[0].read_text())["seeds"] == result["seeds"]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_record_writes_every_frame_of_the_episode(cartpole_run, tmp_path, suffix):
    out = tmp_path / f"episode{suffix}"
    # 25 frames/s: 40 ms a frame, which GIF (in hundredths of a second) holds exactly.
    record = ["record", str(cartpole_run), "--out", str(out), "--max-steps", "40", "--fps", "25"]
    assert main(record) == 0
    # The reset frame and one per step; the balanced pole lasts all 40 steps.
    if suffix == ".mp4":
        assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 41
        size = next(imageio_ffmpeg.read_frames(str(out)))["size"]  # the first item: metadata
        assert tuple(size) == (600, 400)
        return
    else:
        # GIF writers merge identical consecutive frames into one that shows longer:
        # the frames' durations add up to 41 frames of 40 ms.
        frames = imageio.mimread(out)
        assert _gif_milliseconds(out) == 41 * 40
    assert frames[0].shape[:2] == (400, 600)


def _gif_milliseconds(path: Path) -> float:
    from PIL import Image

    with Image.open(path) as gif:
        total = 0.0
        for index in range(gif.n_frames):
            gif.seek(index)
            total += gif.info["duration"]
    return total


@pytest.mark.slow
def test_record_renders_a_navix_run(tmp_path):
    run, out = tmp_path / "navix", tmp_path / "navix.gif"
    env = ["--env", "navix::Navix-Empty-5x5-v0", "--seeds", "1", "--hidden-size", "16"]
    train = ["train", *env, "--torso", "gru", "--total-steps", "1024", "--out", str(run)]
    assert main(train) == 0
    result = record_run(run, out, episodes=2, max_steps=12, fps=25, memory_overlay=True)
    # Each episode: its first frame and one per step that did not end it, 12 steps at
    # most; the GIF holds every one for 40 ms (identical neighbours merged into longer ones).
    assert 2 <= result["frames"] <= 2 * 13
    assert _gif_milliseconds(out) == result["frames"] * 40
    frames = imageio.mimread(out)
    # navix's 40 x 40 grid scaled to 160, and a 40-pixel strip of the memory's norm under it.
    assert frames[0].shape == (200, 160, 3)
    # The first frame shows the empty memory (a flat line); later ones a curve that rises.
    first_strip, last_strip = frames[0][160:], frames[-1][160:]
    drawn = np.array([(90, 200, 255)], np.uint8)
    assert (last_strip == drawn).all(axis=-1).sum() > (first_strip == drawn).all(axis=-1).sum()


@pytest.mark.slow
def test_memory_overlay_needs_a_memory_torso(cartpole_run, tmp_path):
    with pytest.raises(ValueError, match="mlp torso has no memory to draw"):
        record_run(cartpole_run, tmp_path / "x.gif", memory_overlay=True)


def test_record_refuses_other_formats_before_loading(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["record", str(tmp_path), "--out", str(tmp_path / "x.avi")])
    assert exited.value.code == 2
    assert "write a .gif or an .mp4 file" in capsys.readouterr().err
