"""Real PPO training (two vmapped seeds) streamed into loggers, checked against state.metrics."""

from __future__ import annotations

import io

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

from memorax.algorithms import PPO, PPOConfig
from memorax.envs import make
from memorax.logging import CSVLogger, MultiLogger, Progress, as_metrics_callback, read_metrics
from memorax.networks import MLP, Categorical, FeatureExtractor, Network, VNetwork
from memorax.plotting import plot_runs

CONFIG = PPOConfig(num_envs=4, num_steps=32, num_minibatches=2, update_epochs=1)
NUM_UPDATES = 3


def mlp(head):
    return Network(FeatureExtractor(MLP((16,), activation=nn.tanh)),
                   MLP((16,), activation=nn.tanh), head)  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ppo-run")
    stream = io.StringIO()
    logger = MultiLogger([CSVLogger(run_dir), Progress(NUM_UPDATES * CONFIG.steps_per_update,
                                                        stream=stream, interval=0.0)])  # fmt: skip
    env, env_params = make("gymnax::CartPole-v1", num_envs=CONFIG.num_envs)
    agent = PPO(CONFIG, env, env_params, mlp(Categorical(2)), mlp(VNetwork()),
                optax.adam(3e-4), optax.adam(3e-4),
                metrics_callback=as_metrics_callback(logger))  # fmt: skip
    states = jax.vmap(agent.init)(jax.random.split(jax.random.key(0), 2))
    keys = jax.random.split(jax.random.key(1), 2)
    states = jax.vmap(agent.train, in_axes=(0, 0, None))(
        keys, states, NUM_UPDATES * CONFIG.steps_per_update
    )
    jax.block_until_ready(states)
    jax.effects_barrier()  # every host callback has run
    logger.close()
    return run_dir, states, stream.getvalue()


def test_streamed_csv_holds_each_seeds_metrics_exactly(run):
    run_dir, states, _ = run
    series = read_metrics(run_dir)
    assert sorted(series) == [0, 1]
    for seed in (0, 1):
        expected_steps = np.asarray(states.metrics["env_steps"][seed])
        np.testing.assert_array_equal(series[seed]["step"], expected_steps)
        for name, values in states.metrics.items():
            np.testing.assert_allclose(
                series[seed][name], np.asarray(values[seed], np.float64), rtol=1e-6,
                err_msg=name,
            )  # fmt: skip


def test_progress_reached_the_total_and_shows_a_return(run):
    _, _, text = run
    last = text.strip().splitlines()[-1]
    total = NUM_UPDATES * CONFIG.steps_per_update
    assert last.startswith(f"100.0% | {total:,}/{total:,} steps")
    assert "return -" not in last


def test_learning_curve_png_is_written_from_the_run(run, tmp_path):
    run_dir, _, _ = run
    out = plot_runs([run_dir], tmp_path / "learning_curve.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
