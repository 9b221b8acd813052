"""``memorax train`` and ``memorax plot`` as a user runs them."""

from __future__ import annotations

import csv
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from memorax.checkpoints import Checkpointer
from memorax.cli import main
from memorax.cli.main import build_parser
from memorax.cli.run_settings import SettingsError
from memorax.cli.train_command import resolve_settings
from memorax.envs import make

TINY = [
    "--ppo.num-envs", "2",
    "--ppo.num-steps", "16",
    "--ppo.num-minibatches", "2",
    "--ppo.update-epochs", "1",
    "--hidden-size", "8",
    "--checkpoint-every", "2",
]  # fmt: skip
UPDATE = 2 * 16


def train(out: Path, *extra: str, updates: int = 8) -> int:
    return main(["train", "--out", str(out), "--num-steps", str(updates * UPDATE), *TINY, *extra])


def final_states(run_dir: Path, template_dir: Path | None = None):
    with Checkpointer(run_dir) as checkpoints:
        step = checkpoints.latest_step()
        return step, checkpoints.restore(_template(template_dir or run_dir), step)


def _template(run_dir: Path):
    """A fresh vmapped init of the run's agent: the structure checkpoints restore into."""
    from memorax.cli.agents import ALGORITHMS
    from memorax.cli.run_settings import RunSettings
    from memorax.envs import make

    settings = RunSettings.from_json((run_dir / "run.json").read_text())
    spec = ALGORITHMS[settings.algo]
    config = spec.config_class(**{**spec.defaults_for(settings.torso), **settings.algo_config})
    env, params = make(settings.env, num_envs=config.num_envs)
    agent = spec.build(config, env, params, settings.torso, settings.hidden_size, 1e-3, None)
    keys = jax.random.split(jax.random.key(0), settings.seeds)
    return jax.vmap(agent.init)(keys)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    assert train(out, "--logger", "csv", "--logger", "jsonl", "--logger", "tensorboard") == 0
    return out


def test_help_lists_the_options_and_config_fields(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    # --total-steps is the run's length (--num-steps, its old name, still parses).
    for option in ("--algo", "--env", "--torso", "--total-steps", "--seeds", "--out", "--logger",
                   "--config", "--resume", "--ppo.gamma", "--ppo.num-minibatches"):  # fmt: skip
        assert option in text


def test_help_lists_only_the_chosen_algorithms_fields(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    default = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--algo", "sac", "--help"])
    sac = capsys.readouterr().out
    assert "--ppo.gamma" in default and "--sac.tau" not in default
    assert "--sac.tau" in sac and "--ppo.gamma" not in sac
    assert "`memorax train --algo sac --help` lists SAC's" in default
    assert len(default.splitlines()) < 120


def test_a_usage_error_is_the_error_and_one_hint_not_the_usage_block(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--torso", "rnn"])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("memorax train: error: argument --torso: invalid choice: 'rnn'")
    assert lines[1] == "(`memorax train --help` lists the options)"


def test_total_steps_and_its_old_name_num_steps_set_the_run_length():
    for flag in ("--total-steps", "--num-steps"):
        settings, _ = resolve_settings(vars(build_parser().parse_args(["train", flag, "640"])))
        assert settings.num_steps == 640


def test_the_torso_defaults_to_the_algorithms_own_unless_named(tmp_path):
    def torso(*argv: str) -> str:
        settings, _ = resolve_settings(vars(build_parser().parse_args(["train", *argv])))
        return settings.torso

    assert torso() == "mlp"
    assert torso("--algo", "r2d2") == "gru"  # R2D2 needs memory: its default run works
    assert torso("--algo", "r2d2", "--torso", "lstm") == "lstm"
    config = tmp_path / "run.toml"
    config.write_text('algo = "r2d2"\ntorso = "mlp"\n')
    assert torso("--config", str(config)) == "mlp"  # then refused when the agent is built


def test_a_run_leaves_metrics_checkpoints_and_a_plot(finished_run):
    files = {path.name for path in finished_run.iterdir()}
    assert {
        "run.json",
        "metrics.csv",
        "metrics.jsonl",
        "learning_curve.png",
        "checkpoints",
    } <= files
    assert (finished_run / "learning_curve.png").stat().st_size > 10_000
    with (finished_run / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    # One series per seed: 8 updates for each of the 2 vmapped seeds.
    assert sorted(int(row["seed"]) for row in rows) == [0] * 8 + [1] * 8
    assert max(int(row["step"]) for row in rows) == 8 * UPDATE
    steps = sorted(
        int(p.name) for p in (finished_run / "checkpoints").iterdir() if p.name.isdigit()
    )
    assert steps[-1] == 8 * UPDATE
    assert any((finished_run / "tensorboard").rglob("events.out.tfevents.*"))


def test_resuming_reproduces_the_uninterrupted_run_bit_for_bit(finished_run, tmp_path):
    partial = tmp_path / "partial"
    assert train(partial, updates=4) == 0
    assert main(["train", "--resume", str(partial), "--num-steps", str(8 * UPDATE)]) == 0
    step_full, full = final_states(finished_run)
    step_resumed, resumed = final_states(partial)
    assert step_full == step_resumed == 8 * UPDATE
    same = jax.tree.map(_bitwise_equal, full, resumed)
    assert all(jax.tree.leaves(same))
    with (partial / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 16, "the resumed run logs each update once"
    # The evaluation after every chunk (4 chunks of 2 updates, 2 seeds), each once, and
    # the same as the uninterrupted run's (its keys depend on the chunk alone).
    evaluations = [evaluation_rows(run) for run in (finished_run, partial)]
    assert len(evaluations[1]) == 4 * 2
    assert evaluations[0] == evaluations[1]


def evaluation_rows(run_dir):
    """``RUN_DIR/evaluation/metrics.csv`` as (step, seed, return) sorted by step and seed."""
    with (run_dir / "evaluation" / "metrics.csv").open() as file:
        rows = [(int(r["step"]), int(r["seed"]), float(r["evaluation_return"]))
                for r in csv.DictReader(file)]  # fmt: skip
    return sorted(rows)


def test_the_deterministic_policy_is_evaluated_after_every_chunk(finished_run, capsys):
    rows = evaluation_rows(finished_run)
    assert [(step, seed) for step, seed, _ in rows] == [
        (chunk * 2 * UPDATE, seed) for chunk in range(1, 5) for seed in (0, 1)
    ]
    # CartPole pays 1 a step: a return is an episode length, at least 8 steps.
    assert all(value >= 8 for _, _, value in rows)
    assert (finished_run / "evaluation_curve.png").stat().st_size > 0
    assert main(["plot", "--evaluation", str(finished_run)]) == 0
    assert (finished_run / "evaluation_comparison.png").exists()


def _bitwise_equal(a, b) -> bool:
    """Same bytes (NaNs included, typed keys compared by their key data)."""
    a, b = (jax.random.key_data(x) if _is_key(x) else x for x in (a, b))
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _is_key(x) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def test_unknown_env_id_is_the_library_error_without_a_traceback(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--env", "gymnax::CartPol-v1"])
    assert exit_.value.code == 2
    assert "Did you mean 'CartPole-v1'?" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--torso", "rnn"], "invalid choice"),
        (["--ppo.gamma", "high"], "--ppo.gamma: expected float"),
        (["--ppo.num-minibatches", "3"], "num_minibatches=3"),
        (["--env", "CartPole-v1"], "namespace::id"),
        (["--num-steps", "0"], "positive integer"),
    ],
)
def test_bad_options_are_clear_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_config_file_sets_fields_and_flags_override_it(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text(
        'env = "gymnax::MemoryChain-bsuite"\ntorso = "gru"\nnum_steps = 4096\n'
        "[env_kwargs]\nmemory_length = 10\n[ppo]\nnum_envs = 8\ngamma = 0.9\n"
    )
    settings, _ = resolve_settings({"config": toml, "ppo.gamma": "0.5", "seeds": 3})
    assert settings.env == "gymnax::MemoryChain-bsuite" and settings.torso == "gru"
    assert settings.env_kwargs == {"memory_length": 10}
    assert settings.algo_config == {"num_envs": 8, "gamma": 0.5}
    assert settings.seeds == 3
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("num_steps: 2048\nppo:\n  num_steps: 64\n")
    settings, _ = resolve_settings({"config": yaml_file})
    assert settings.num_steps == 2048 and settings.algo_config == {"num_steps": 64}


def test_config_file_with_an_unknown_field_is_a_clear_error(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("[ppo]\ngama = 0.9\n")
    with pytest.raises(SettingsError, match="no field\\(s\\) gama"):
        resolve_settings({"config": toml})


def test_ctrl_c_writes_a_checkpoint_and_logs_then_exits_cleanly(tmp_path):
    out = tmp_path / "interrupted"
    argv = ["train", "--out", str(out), "--num-steps", str(400 * UPDATE), *TINY]
    process = subprocess.Popen(
        [sys.executable, "-m", "memorax.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    deadline = time.monotonic() + 240
    while not (out / "checkpoints").exists() or not any(
        p.name.isdigit() for p in (out / "checkpoints").iterdir()
    ):
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 130, output
    assert "Traceback" not in output
    assert "memorax train --resume" in output
    assert (out / "metrics.csv").stat().st_size > 0
    checkpoint_steps = [int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit()]
    assert max(checkpoint_steps) < 400 * UPDATE


def _spawn(argv: list[str], **env: str) -> tuple[subprocess.Popen, queue.Queue]:
    """``memorax`` in a subprocess, its output lines arriving in a queue as they come."""
    process = subprocess.Popen(
        [sys.executable, "-m", "memorax.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu", **env},
    )
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def _wait_for(lines: queue.Queue, text: str, seen: list[str], timeout: float = 240) -> float:
    """Read lines until one contains ``text``; the time it arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = lines.get(timeout=deadline - time.monotonic())
        assert line is not None, "".join(seen)
        seen.append(line)
        if text in line:
            return time.monotonic()
    raise AssertionError(f"{text!r} never came:\n{''.join(seen)}")


def test_ctrl_c_is_acknowledged_at_once_and_a_second_one_aborts_without_a_traceback(tmp_path):
    out = tmp_path / "aborted"
    argv = ["train", "--out", str(out), "--num-steps", str(400 * UPDATE), *TINY,
            "--torso", "gru", "--env", "gymnax::MemoryChain-bsuite"]  # fmt: skip
    process, lines = _spawn(argv)
    seen: list[str] = []
    _wait_for(lines, "compiling the training program", seen)
    # While XLA compiles (seconds on two cores) the first Ctrl-C is acknowledged at once.
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    acknowledged = _wait_for(lines, "Received SIGINT", seen)
    assert acknowledged - sent < 2.0
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    process.wait(timeout=10)
    assert time.monotonic() - sent < 2.0
    while (line := lines.get(timeout=5)) is not None:
        seen.append(line)
    output = "".join(seen)
    assert process.returncode == 130, output
    assert "Aborted" in output and "Traceback" not in output


def test_the_main_job_compiles_its_training_program_once(tmp_path):
    # 8 updates in chunks of 3 would end with a shorter chunk (another compile); the
    # run is rounded up to 3 chunks of 3 instead, and says so.
    out = tmp_path / "once"
    argv = ["train", "--out", str(out), "--num-steps", str(8 * UPDATE), *TINY[:-2],
            "--checkpoint-every", "3"]  # fmt: skip
    # A persistent-cache hit would log no compilation at all: count real compiles.
    process, lines = _spawn(argv, JAX_LOG_COMPILES="1", JAX_ENABLE_COMPILATION_CACHE="false")
    seen: list[str] = []
    _wait_for(lines, "done in", seen)
    process.wait(timeout=60)
    output = "".join(seen)
    assert process.returncode == 0, output
    assert output.count("compilation of jit(train)") == 1, output
    assert "rounded up to 288" in output
    with (out / "metrics.csv").open() as file:
        assert len(list(csv.DictReader(file))) == 2 * 9
    steps = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    assert steps[-1] == 9 * UPDATE


def test_resuming_a_finished_run_says_it_is_complete(finished_run, capsys):
    assert main(["train", "--resume", str(finished_run)]) == 0
    assert "is complete: it trained all 256 env steps per seed" in capsys.readouterr().out


def test_plot_command_compares_runs(finished_run, tmp_path, capsys):
    out = tmp_path / "compare.png"
    assert main(["plot", str(finished_run), str(finished_run), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    assert json.loads((finished_run / "run.json").read_text())["seeds"] == 2


def test_plot_without_out_writes_into_the_first_run_not_the_working_directory(
    finished_run, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert main(["plot", str(finished_run), str(finished_run)]) == 0
    assert (finished_run / "comparison.png").stat().st_size > 10_000
    assert not list(tmp_path.iterdir())
    assert str(finished_run / "comparison.png") in capsys.readouterr().out


def test_config_takes_a_runs_own_run_json_but_not_its_directory(finished_run):
    settings, _ = resolve_settings({"config": finished_run / "run.json", "seed": 7})
    saved = json.loads((finished_run / "run.json").read_text())
    assert settings.out is None and settings.seed == 7
    assert settings.algo_config == saved["algo_config"]
    assert (settings.env, settings.torso, settings.seeds) == (
        saved["env"], saved["torso"], saved["seeds"],
    )  # fmt: skip


def test_counters_stay_integers_in_the_csv_after_a_resume(tmp_path):
    partial = tmp_path / "partial"
    assert train(partial, updates=4) == 0
    assert main(["train", "--resume", str(partial), "--num-steps", str(6 * UPDATE)]) == 0
    with (partial / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 12
    for row in rows:
        for name in ("env_steps", "update", "episode_count"):
            assert row[name].lstrip("-").isdigit(), (name, row[name])


def test_a_missing_logger_library_is_named_with_its_install_lines_before_anything_is_written(
    tmp_path, monkeypatch, capsys
):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboardX" else real(name, *a),
    )
    out = tmp_path / "no-tensorboard"
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--out", str(out), "--logger", "tensorboard", *TINY])
    assert exit_.value.code == 2
    message = capsys.readouterr().err
    assert "--logger tensorboard needs tensorboardX" in message
    assert 'pip install "memorax-core[tensorboard]"' in message
    assert 'pip install "./packages/memorax-core[tensorboard]"' in message
    assert not out.exists()


def test_callback_env_seeds_train_in_one_vmap_and_resume_resets_the_env(tmp_path, capsys):
    out = tmp_path / "gymnasium"
    assert train(out, "--env", "gymnasium::CartPole-v1", updates=4) == 0
    first = capsys.readouterr().out
    assert "one after another" not in first
    with (out / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    # One vmapped program logs both seeds at every update (seeds one after another
    # would log all of seed 0 first).
    assert [(int(row["update"]), int(row["seed"])) for row in rows][:4] == [
        (1, 0), (1, 1), (2, 0), (2, 1),
    ]  # fmt: skip
    assert sorted(int(row["seed"]) for row in rows) == [0] * 4 + [1] * 4
    # Evaluated after each chunk on an env of its own: the training env was not reset.
    assert len(evaluation_rows(out)) == 2 * 2
    assert main(["train", "--resume", str(out), "--num-steps", str(6 * UPDATE)]) == 0
    resumed = capsys.readouterr().out
    assert "the agent is restored and the env starts new episodes" in resumed
    with (out / "metrics.csv").open() as file:
        assert len(list(csv.DictReader(file))) == 12


def test_an_env_that_cannot_vmap_trains_its_seeds_one_after_another(tmp_path, capsys, monkeypatch):
    import memorax_envs_callback.gymnasium as gymnasium_backend
    from memorax_envs_callback import CallbackEnvironment

    class OneHostEnv(CallbackEnvironment):
        """The gymnasium bridge without a host factory: one host env, no vmap."""

        def __init__(self, name, host, host_factory=None):
            super().__init__(name, host)

    monkeypatch.setattr(gymnasium_backend, "CallbackEnvironment", OneHostEnv)
    out = tmp_path / "one-host"
    assert train(out, "--env", "gymnasium::CartPole-v1", updates=4) == 0
    first = capsys.readouterr().out
    assert "cannot be vmapped over seeds: training the 2 seeds one after another" in first
    with (out / "metrics.csv").open() as file:
        seeds = [int(row["seed"]) for row in csv.DictReader(file)]
    assert seeds == [0] * 4 + [1] * 4
    assert main(["train", "--resume", str(out), "--num-steps", str(6 * UPDATE)]) == 0
    resumed = capsys.readouterr().out
    assert "the agent is restored and the env starts new episodes" in resumed


# Tiny configs for every agent; replay agents keep their default sequence lengths for a
# memory torso (20 learned steps after 10 of burn-in), so the buffer holds 32 steps per copy.
CLI_AGENTS = {
    "ppo": ["--ppo.num-envs", "4", "--ppo.num-steps", "16", "--ppo.num-minibatches", "2"],
    "pqn": ["--pqn.num-envs", "4", "--pqn.num-steps", "8", "--pqn.num-minibatches", "2"],
    "dqn": ["--dqn.num-envs", "4", "--dqn.num-steps", "8", "--dqn.learning-starts", "128",
            "--dqn.batch-size", "4", "--dqn.buffer-size", "128"],
    "r2d2": ["--r2d2.num-envs", "4", "--r2d2.num-steps", "8", "--r2d2.learning-starts", "128",
             "--r2d2.batch-size", "4", "--r2d2.buffer-size", "256", "--r2d2.sequence-length", "4",
             "--r2d2.burn-in-length", "2", "--r2d2.n-step", "2"],
    "sac": ["--sac.num-envs", "4", "--sac.num-steps", "8", "--sac.learning-starts", "128",
            "--sac.batch-size", "4", "--sac.buffer-size", "128"],
}  # fmt: skip
LOSS = {"ppo": "policy_loss", "pqn": "loss", "dqn": "loss", "r2d2": "loss", "sac": "critic_loss"}


@pytest.mark.parametrize("algo", list(CLI_AGENTS))
def test_every_agent_trains_its_memory_torso_from_the_cli(algo, tmp_path):
    out = tmp_path / algo
    argv = ["train", "--algo", algo, "--torso", "gru", "--out", str(out), "--num-steps", "256",
            "--seeds", "1", "--env", "gymnax::MemoryChain-bsuite"]  # fmt: skip
    assert main([*argv, "--hidden-size", "8", *CLI_AGENTS[algo]]) == 0
    with (out / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert rows and int(rows[-1]["step"]) == 256
    # The last update learned (replay agents start after learning_starts).
    assert np.isfinite(float(rows[-1][LOSS[algo]]))


def test_replay_agents_from_the_cli_replay_sequences_for_a_memory_torso():
    from memorax.cli.agents import ALGORITHMS

    env, env_params = make("gymnax::MemoryChain-bsuite", num_envs=8)
    for algo in ("dqn", "sac"):
        spec = ALGORITHMS[algo]
        config = spec.config_class(**{**spec.defaults_for("gru"), "num_envs": 8})
        gru = spec.build(config, env, env_params, "gru", 16, 1e-3, None)
        mlp = spec.build(config, env, env_params, "mlp", 16, 1e-3, None)
        assert (gru.config.sequence_length, gru.config.burn_in_length) == (20, 10), algo
        assert (mlp.config.sequence_length, mlp.config.burn_in_length) == (1, 0), algo


def test_r2d2_without_a_memory_torso_names_the_fix_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r2d2-mlp"
    argv = ["train", "--algo", "r2d2", "--torso", "mlp", "--out", str(out), "--num-steps", "256"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "--torso gru" in capsys.readouterr().err
    assert not out.exists()


# --sweep: settings x seeds in one program, each setting equal to its own run.

RATES = ["1e-4", "3e-4", "1e-3"]


def rows(metrics_csv):
    """A metrics.csv's rows sorted by step, then seed."""
    with metrics_csv.open() as file:
        table = sorted(csv.DictReader(file), key=lambda row: (int(row["step"]), int(row["seed"])))
    return table


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "lr"
    assert train(out, "--sweep", f"learning-rate={','.join(RATES)}", "--seeds", "4") == 0
    return out


def test_three_learning_rates_x_four_seeds_write_a_directory_per_setting(swept):
    record = json.loads((swept / "sweep.json").read_text())
    assert [entry["learning_rate"] for entry in record] == [float(rate) for rate in RATES]
    for entry in record:
        table = rows(swept / entry["directory"] / "metrics.csv")
        assert sorted({int(row["seed"]) for row in table}) == [0, 1, 2, 3]
        assert len(table) == 4 * 8  # 4 seeds x 8 updates
        assert (swept / entry["directory"] / "learning_curve.png").stat().st_size > 0
    assert (swept / "comparison.png").exists()
    summary = (swept / "summary.md").read_text()
    assert summary.count("| setting-") == 3


def test_each_setting_equals_its_separate_run(swept, tmp_path):
    alone = tmp_path / "alone"
    assert train(alone, "--learning-rate", RATES[1], "--seeds", "4") == 0
    separate, setting = rows(alone / "metrics.csv"), rows(swept / "setting-1" / "metrics.csv")
    assert len(separate) == len(setting)
    for expected, got in zip(separate, setting, strict=True):
        assert (expected["step"], expected["seed"]) == (got["step"], got["seed"])
        for name in ("policy_loss", "value_loss", "entropy", "episode_return"):
            # An empty cell is an update in which no episode ended (NaN).
            want, have = (float(row[name] or "nan") for row in (expected, got))
            np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-5, err_msg=name)
    other = rows(swept / "setting-2" / "metrics.csv")
    assert any(a["value_loss"] != b["value_loss"] for a, b in zip(setting, other, strict=True))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sweep", "ppo.gamma"], "write NAME=V1,V2"),
        (["--sweep", "dqn.gamma=0.9,0.99"], "configures dqn, not --algo ppo"),
        (["--sweep", "ppo.gamma=0.9,high"], "the values must be numbers"),
        (["--sweep", "ppo.gamma=0.9", "--sweep", "ppo.gamma=0.99"], "swept twice"),
    ],
)
def test_bad_sweep_options_are_clear_errors(argv, message):
    with pytest.raises(SettingsError, match=message):
        resolve_settings({"sweeps": argv[1::2]})


def test_a_static_field_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "static"
    with pytest.raises(SystemExit):
        train(out, "--sweep", "ppo.num-steps=8,16")
    assert "not a float: integer, boolean and optional fields" in capsys.readouterr().err
    assert not out.exists()


def test_a_sweep_run_cannot_be_resumed_and_says_so(swept, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--resume", str(swept)])
    assert "sweep runs keep no checkpoints yet" in capsys.readouterr().err


def test_a_run_too_short_for_any_episode_to_end_finishes_without_a_curve(tmp_path, capsys):
    # MemoryChain's episodes last 51 steps; one update of 16 steps ends none.
    chain = ["--env", "gymnax::MemoryChain-bsuite", "--env-arg", "memory_length=50"]
    assert train(tmp_path / "single", *chain, "--seeds", "1", updates=1) == 0
    assert "learning curve: none (no episode ended" in capsys.readouterr().out
    assert (tmp_path / "single" / "metrics.csv").is_file()
    assert not (tmp_path / "single" / "learning_curve.png").exists()
    sweep = ["--sweep", "learning-rate=1e-3,1e-4", "--seeds", "2"]
    assert train(tmp_path / "sweep", *chain, *sweep, updates=1) == 0
    printed = capsys.readouterr().out
    assert "no summary table" in printed and "curves: none (no episode ended" in printed
