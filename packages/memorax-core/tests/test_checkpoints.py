"""Checkpoints: bit-for-bit round trips of real training state, and graceful Ctrl-C."""

from __future__ import annotations

import io
import os
import signal
import threading

import jax
import numpy as np
import optax
import pytest

from memorax.algorithms import PPO, PPOConfig
from memorax.checkpoints import (
    Checkpointer,
    DamagedCheckpointError,
    GracefulInterrupt,
    latest_step,
    restore,
    restore_metadata,
    save,
)
from memorax.envs import make
from memorax.networks import GRU, MLP, Categorical, FeatureExtractor, Network, VNetwork

CONFIG = PPOConfig(num_envs=2, num_steps=8, num_minibatches=2, update_epochs=1)


def gru_agent(width: int = 8) -> PPO:
    env, env_params = make("gymnax::CartPole-v1", num_envs=CONFIG.num_envs)

    def network(head):
        return Network(FeatureExtractor(MLP((width,))), GRU(width), head)

    return PPO(CONFIG, env, env_params, network(Categorical(2)), network(VNetwork()),
               optax.adam(1e-3), optax.adam(1e-3))  # fmt: skip


@pytest.fixture(scope="module")
def agent():
    return gru_agent()


@pytest.fixture(scope="module")
def seed_states(agent):
    """Two seeds' initial PPO states, ``[2, ...]`` leaves (one compile serves every test)."""
    return jax.jit(jax.vmap(agent.init))(jax.random.split(jax.random.key(1), 2))


@pytest.fixture(scope="module")
def training_state(seed_states):
    """What a training loop checkpoints: the agent state, its own key and counters."""
    return {
        "agent": jax.tree.map(lambda leaf: leaf[0], seed_states),
        "key": jax.random.key(42),
        "chunk": 3,
    }


def assert_identical(restored, original):
    """Same structure, leaf types, dtypes and bits (typed keys compared by key data)."""
    assert jax.tree.structure(restored) == jax.tree.structure(original)
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(original), strict=True):
        assert type(got) is type(want)
        if isinstance(want, jax.Array) and jax.dtypes.issubdtype(want.dtype, jax.dtypes.prng_key):
            assert got.dtype == want.dtype
            got, want = jax.random.key_data(got), jax.random.key_data(want)
        got, want = np.asarray(got), np.asarray(want)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(
            np.atleast_1d(got).view(np.uint8), np.atleast_1d(want).view(np.uint8)
        )


def test_training_state_round_trips_bit_for_bit(tmp_path, training_state):
    save(tmp_path, 5, training_state, {"env_id": "gymnax::CartPole-v1"})
    restored = restore(tmp_path, training_state)
    assert_identical(restored, training_state)
    assert restore_metadata(tmp_path) == {"env_id": "gymnax::CartPole-v1"}


def test_vmapped_seeds_round_trip_bit_for_bit(tmp_path, seed_states):
    save(tmp_path, 0, seed_states)
    assert_identical(restore(tmp_path, seed_states), seed_states)


def test_restore_into_an_abstract_target_gives_arrays_and_typed_keys(tmp_path, agent,
                                                                     training_state):  # fmt: skip
    save(tmp_path, 1, training_state)
    target = {
        "agent": jax.eval_shape(agent.init, jax.random.key(7)),
        "key": jax.eval_shape(lambda: jax.random.key(0)),
        "chunk": 0,
    }
    assert_identical(restore(tmp_path, target), training_state)


def test_other_key_implementations_come_back_as_themselves(tmp_path):
    state = {"rbg": jax.random.key(3, impl="rbg"), "fry": jax.random.split(jax.random.key(4))}
    save(tmp_path, 0, state)
    assert_identical(restore(tmp_path, state), state)


def test_64_bit_numpy_and_python_values_survive(tmp_path):
    state = {"big": np.array([2**40, -1]), "count": 2**40, "rate": 0.1, "flag": np.bool_(True)}
    save(tmp_path, 0, state)
    assert_identical(restore(tmp_path, state), state)


def test_only_the_most_recent_checkpoints_are_kept(tmp_path):
    state = {"x": np.arange(3.0)}
    with Checkpointer(tmp_path, max_to_keep=2) as checkpointer:
        for step in (10, 20, 30):
            checkpointer.save(step, {"x": state["x"] + step})
        assert checkpointer.steps() == [20, 30]
    assert latest_step(tmp_path) == 30
    np.testing.assert_array_equal(restore(tmp_path, state, step=20)["x"], [20.0, 21.0, 22.0])
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["20", "30"]


def test_a_step_folder_without_its_commit_file_is_skipped_and_replaced_when_saved(tmp_path):
    state = {"x": np.arange(3.0)}
    with Checkpointer(tmp_path, max_to_keep=None) as checkpointer:
        checkpointer.save(10, {"x": state["x"] + 10})
        checkpointer.save(20, {"x": state["x"] + 20})
    # What a kill between orbax's rename and its commit file leaves behind.
    (tmp_path / "checkpoints" / "20" / "commit_success.txt").unlink()
    assert latest_step(tmp_path) == 10
    np.testing.assert_array_equal(restore(tmp_path, state)["x"], [10.0, 11.0, 12.0])
    with Checkpointer(tmp_path, max_to_keep=None) as checkpointer:
        checkpointer.save(20, {"x": state["x"] + 200})
        assert checkpointer.steps() == [10, 20]
    np.testing.assert_array_equal(restore(tmp_path, state)["x"], [200.0, 201.0, 202.0])


def test_a_damaged_checkpoint_names_the_intact_ones(tmp_path):
    state = {"x": np.arange(4096.0)}
    with Checkpointer(tmp_path, max_to_keep=None) as checkpointer:
        checkpointer.save(1, state)
        checkpointer.save(2, state)
    for data in (tmp_path / "checkpoints" / "2" / "state" / "d").iterdir():
        with open(data, "r+b") as file:
            file.truncate(data.stat().st_size // 2)
    with pytest.raises(DamagedCheckpointError, match=r"other complete checkpoints are steps \[1\]"):
        restore(tmp_path, state)
    np.testing.assert_array_equal(restore(tmp_path, state, step=1)["x"], state["x"])


def test_latest_step_of_a_run_without_checkpoints_is_none_and_creates_nothing(tmp_path):
    assert latest_step(tmp_path / "typo") is None
    assert not (tmp_path / "typo").exists()


def test_restore_names_the_missing_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no checkpoints/ folder"):
        restore(tmp_path, {"x": np.zeros(1)})
    save(tmp_path, 4, {"x": np.zeros(1)})
    with pytest.raises(FileNotFoundError, match=r"No checkpoint for step 5 .* saved steps: \[4\]"):
        restore(tmp_path, {"x": np.zeros(1)}, step=5)


def test_a_target_of_another_structure_is_refused_with_the_differing_paths(
    tmp_path, training_state
):
    save(tmp_path, 0, training_state)
    with pytest.raises(
        ValueError, match=r"does not match .* in the target only \[\"\['extra'\]\"\]"
    ):
        restore(tmp_path, {**training_state, "extra": np.zeros(2)})


def test_a_target_with_other_shapes_is_refused_before_reading(tmp_path, training_state):
    save(tmp_path, 0, training_state)
    wider_agent = gru_agent(width=16)
    wider = {**training_state, "agent": jax.eval_shape(wider_agent.init, jax.random.key(0))}
    with pytest.raises(ValueError, match=r"\['agent'\].actor_params.*checkpoint has shape"):
        restore(tmp_path, wider)


def test_a_step_is_saved_once(tmp_path):
    save(tmp_path, 3, {"x": np.zeros(1)})
    with pytest.raises(FileExistsError, match="step 3 is already saved"):
        save(tmp_path, 3, {"x": np.ones(1)})


@pytest.mark.parametrize(
    ("state", "metadata", "message"),
    [
        ({"x": np.zeros(1)}, {"bad": object()}, "metadata must be JSON-serialisable"),
        ({"x": "text"}, None, r"leaf \['x'\] is .* arrays and numbers only"),
    ],
)
def test_save_refuses_what_it_cannot_store(tmp_path, state, metadata, message):
    with pytest.raises(TypeError, match=message):
        save(tmp_path, 0, state, metadata)
    assert latest_step(tmp_path) is None


@pytest.mark.parametrize("step", [-1, 1.5, True])
def test_steps_must_be_non_negative_integers(tmp_path, step):
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        save(tmp_path, step, {"x": np.zeros(1)})


# ---------------------------------------------------------------- Ctrl-C


def test_first_ctrl_c_sets_the_flag_instead_of_raising():
    notice = io.StringIO()
    with GracefulInterrupt(stream=notice) as interrupt:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.requested
        assert interrupt.signal == signal.SIGINT
    assert "stopping after the current training chunk" in notice.getvalue()


def test_second_ctrl_c_aborts_at_once():
    with pytest.raises(KeyboardInterrupt), GracefulInterrupt(stream=io.StringIO()):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)


def test_previous_handler_is_restored_on_exit():
    before = signal.getsignal(signal.SIGINT)
    with GracefulInterrupt(signals=(signal.SIGINT, signal.SIGTERM), stream=io.StringIO()):
        assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is before
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_graceful_interrupt_off_the_main_thread_is_refused():
    errors = []

    def enter():
        try:
            with GracefulInterrupt():
                pass
        except RuntimeError as error:
            errors.append(str(error))

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    assert errors and "main thread" in errors[0]
