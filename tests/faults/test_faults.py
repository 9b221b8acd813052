"""Faults a long run meets, each hit the way a user hits it: ``memorax train`` (or a
script) in a subprocess, with real envs, real files and real signals.

Run by ``nox -s faults``. The envs that fail on purpose are gymnasium envs that
``fault_cli.py`` registers before it runs the real CLI.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
FAULT_CLI = HERE / "fault_cli.py"
ROOT = HERE.parents[1]


def run_cli(*args: str, cwd: Path, fault_after: int = 10**9, timeout: int = 600):
    """``memorax ARGS`` through ``fault_cli.py``; the faulty envs fail after ``fault_after``
    steps of the process."""
    env = {**os.environ, "MEMORAX_FAULT_AFTER": str(fault_after)}
    return subprocess.run(
        [sys.executable, str(FAULT_CLI), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def complete_steps(run_dir: Path) -> list[int]:
    """Checkpoint steps with orbax's commit file, read without memorax.

    Orbax writes a step into ``<step>.orbax-checkpoint-tmp`` and renames it when done;
    a poll can catch that folder (with its commit file) just before the rename, so only
    folders named by a step count.
    """
    folder = run_dir / "checkpoints"
    return sorted(
        int(p.name)
        for p in folder.iterdir()
        if p.name.isdigit() and (p / "commit_success.txt").is_file()
    )


def metric_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def processes_mentioning(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (forked workers keep their
    parent's command line, so a leaked worker of a run shows its run directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:  # the process ended while we looked
                continue
    return found


# --------------------------------------------------------------------------- 1. NaN guard

NAN_CASES = {
    # algo: (env, total steps, --checkpoint-every, env steps before rewards turn NaN)
    "ppo": ("gymnasium::NaNRewardCartPole-v0", 8192, "1", 1300),
    "dqn": ("gymnasium::NaNRewardCartPole-v0", 4096, "8", 1300),
    "sac": ("gymnasium::NaNRewardPendulum-v0", 2048, "32", 700),
}


@pytest.mark.parametrize("algo", sorted(NAN_CASES))
def test_a_nan_reward_stops_training_at_the_first_bad_update(algo, tmp_path):
    env, total, every, after = NAN_CASES[algo]
    run = tmp_path / "run"
    result = run_cli(
        "train", "--algo", algo, "--env", env, "--seeds", "1", "--total-steps", str(total),
        "--checkpoint-every", every, "--out", str(run), cwd=tmp_path, fault_after=after,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    error = result.stderr
    assert "Traceback" not in error, error[-3000:]
    assert "made the parameters NaN or infinite" in error
    assert "non-finite metric(s):" in error
    # The message names the last good checkpoint, which is complete on disk.
    steps = complete_steps(run)
    assert steps, "a checkpoint before the fault should exist"
    assert f"the last complete one is env step {steps[-1]}" in error
    assert "Resuming it would repeat the same updates" in error
    # Metrics up to the checkpoint are on disk, and none of them is NaN in the losses.
    rows = metric_rows(run)
    assert max(int(row["env_steps"]) for row in rows) >= steps[-1]


def test_the_guard_can_be_turned_off_and_training_goes_on_through_nan(tmp_path):
    run = tmp_path / "run"
    result = run_cli(
        "train", "--env", "gymnasium::NaNRewardCartPole-v0", "--seeds", "1",
        "--total-steps", "4096", "--ppo.check-finite", "false", "--out", str(run),
        cwd=tmp_path, fault_after=1300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # The CSV leaves a NaN metric empty.
    losses = [float(row["value_loss"] or "nan") for row in metric_rows(run)]
    assert np.isnan(losses[-1]) and np.isfinite(losses[0])


# --------------------------------------------------------------------------- 2. host crashes


PUFFERLIB_MULTIPROCESSING = [
    *("--env", "pufferlib::CrashingCartPole-v0"),
    *("--env-arg", "backend=Multiprocessing", "--env-arg", "num_workers=2"),
]


@pytest.mark.parametrize(
    "env_args",
    [
        pytest.param(["--env", "gymnasium::CrashingCartPole-v0"], id="gymnasium"),
        pytest.param(PUFFERLIB_MULTIPROCESSING, id="pufferlib-multiprocessing"),
    ],
)
def test_a_host_env_that_raises_shows_its_own_error_and_leaves_nothing_behind(env_args, tmp_path):
    run = tmp_path / "crashing-run"
    result = run_cli(
        "train", *env_args, "--seeds", "1", "--total-steps", "8192", "--checkpoint-every", "1",
        "--out", str(run), cwd=tmp_path, fault_after=1300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    error = result.stderr
    # The env's own message and the frame that raised it, not XLA's error.
    assert "simulator lost its connection (CrashingCartPole.step)" in error
    assert 'fault_cli.py", line' in error and "in step" in error
    assert "JaxRuntimeError" not in error and "XlaRuntimeError" not in error
    assert "HostEnvironmentError" in error
    steps = complete_steps(run)
    assert steps and f"the last complete one is env step {steps[-1]}" in error
    assert f"memorax train --resume {run}" in error
    # No worker process of the run outlives it.
    assert processes_mentioning(str(run)) == []


# ------------------------------------------------------------ 3. kill during a checkpoint write

WRITER = """
import sys
import jax.numpy as jnp
import numpy as np
from memorax.checkpoints import Checkpointer

checkpointer = Checkpointer(sys.argv[1], max_to_keep=2)
step = checkpointer.latest_step() or 0
while True:
    step += 1
    # 48 MB per checkpoint, every value the step: a restore shows which write it read.
    state = {"a": jnp.full((8, 1024, 1024), step, jnp.float32),
             "b": np.full((4, 1024, 1024), step, np.float32)}
    checkpointer.save(step, state, {"step": step})
    print(step, flush=True)
"""

CHECK = """
import json, sys
import jax, jax.numpy as jnp
import numpy as np
from memorax.checkpoints import Checkpointer

checkpointer = Checkpointer(sys.argv[1], None)
target = {"a": jax.ShapeDtypeStruct((8, 1024, 1024), jnp.float32),
          "b": np.zeros((4, 1024, 1024), np.float32)}
latest = checkpointer.latest_step()
restored = checkpointer.restore(target)
print(json.dumps({"latest": latest, "metadata": checkpointer.metadata()["step"],
                  "a": sorted(set(np.unique(np.asarray(restored["a"])).tolist())),
                  "b": sorted(set(np.unique(restored["b"]).tolist()))}))
"""


def test_sigkill_during_checkpoint_writes_never_leaves_a_half_checkpoint_to_resume(tmp_path):
    run = tmp_path / "run"
    (tmp_path / "writer.py").write_text(WRITER)
    (tmp_path / "check.py").write_text(CHECK)
    rng = random.Random(0)  # reproducible kill times
    incomplete_seen = 0
    for _ in range(6):
        writer = subprocess.Popen(
            [sys.executable, "writer.py", str(run)], cwd=tmp_path, stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None
        writer.stdout.readline()  # one checkpoint written in this round
        time.sleep(rng.uniform(0.0, 0.6))  # then killed somewhere in a later write
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        # A write cut short leaves orbax's "<step>.orbax-checkpoint-tmp" folder, a deletion
        # cut short a step folder without its commit file.
        entries = list((run / "checkpoints").iterdir())
        incomplete_seen += sum(not (p / "commit_success.txt").is_file() for p in entries)
        checked = subprocess.run(
            [sys.executable, "check.py", str(run)], cwd=tmp_path, capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr[-3000:]
        state = json.loads(checked.stdout.strip().splitlines()[-1])
        # The latest complete checkpoint, read back whole: every value is its own step.
        assert state["latest"] == max(complete_steps(run))
        assert state["a"] == state["b"] == [float(state["latest"])] == [state["metadata"]]
    # The kills did land inside writes (or deletions), so the check above meant something.
    assert incomplete_seen > 0


def test_resume_skips_a_checkpoint_whose_write_was_cut_short(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    # What a SIGKILL between orbax's rename of a finished write and its commit file (or
    # during a deletion) leaves: a step folder without commit_success.txt, which orbax
    # itself would list as the latest step.
    cut_short = run / "checkpoints" / "1536"
    shutil.copytree(run / "checkpoints" / "1024", cut_short)
    (cut_short / "commit_success.txt").unlink()
    shutil.rmtree(cut_short / "state" / "d")
    resumed = run_cli("train", "--resume", str(run), "--total-steps", "2048", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert complete_steps(run)[-1] == 2048
    # The rewritten step is a whole checkpoint now.
    assert (cut_short / "commit_success.txt").is_file()


def test_sigkill_during_training_resumes_from_the_last_checkpoint_without_duplicate_rows(
    tmp_path,
):
    run = tmp_path / "run"
    common = ["--env", "gymnax::CartPole-v1", "--seeds", "2", "--total-steps", "8192"]
    training = subprocess.Popen(
        [sys.executable, str(FAULT_CLI), "train", *common, "--checkpoint-every", "1",
         "--out", str(run)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (
        (run / "checkpoints").is_dir() and len(complete_steps(run)) >= 2
    ):
        time.sleep(0.05)
    training.send_signal(signal.SIGKILL)
    training.wait()
    assert complete_steps(run), "the run should have written checkpoints before the kill"
    assert complete_steps(run)[-1] < 8192, "killed too late: the run had finished"
    resumed = run_cli("train", "--resume", str(run), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = metric_rows(run)
    keys = [(row["seed"], row["env_steps"]) for row in rows]
    assert len(keys) == len(set(keys)), "a metric row was logged twice"
    for seed in ("0", "1"):
        steps = sorted(int(step) for s, step in keys if s == seed)
        assert steps == list(range(512, 8192 + 1, 512))


# ---------------------------------------------------------- 4. wrong or damaged checkpoints


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A real PPO run on gymnax CartPole with two checkpoints."""
    base = tmp_path_factory.mktemp("finished")
    run = base / "run"
    result = run_cli(
        "train", "--env", "gymnax::CartPole-v1", "--seeds", "1", "--total-steps", "1024",
        "--checkpoint-every", "1", "--hidden-size", "16", "--out", str(run), cwd=base,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert complete_steps(run) == [512, 1024]
    return run


CHANGES = {
    "algo": ({"algo": "dqn", "algo_config": {}}, "algo: checkpoint 'ppo', run.json 'dqn'"),
    "torso": ({"torso": "gru"}, "torso: checkpoint 'mlp', run.json 'gru'"),
    "network size": ({"hidden_size": 32}, "hidden_size: checkpoint 16, run.json 32"),
    "env": (
        {"env": "gymnax::Acrobot-v1"},
        "env: checkpoint 'gymnax::CartPole-v1', run.json 'gymnax::Acrobot-v1'",
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_resuming_with_other_settings_names_what_differs_before_training(
    change, finished_run, tmp_path
):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    settings = json.loads((run / "run.json").read_text())
    edit, expected = CHANGES[change]
    settings.update(edit)
    (run / "run.json").write_text(json.dumps(settings))
    rows_before = (run / "metrics.csv").read_text()
    result = run_cli("train", "--resume", str(run), "--total-steps", "2048", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert expected in result.stderr
    assert "A checkpoint only fits the run that wrote it" in result.stderr
    assert "Traceback" not in result.stderr
    # Refused before training: nothing was written.
    assert complete_steps(run) == [512, 1024]
    assert (run / "metrics.csv").read_text() == rows_before


def _truncate_array_files(checkpoint: Path) -> None:
    for data in (checkpoint / "state" / "d").iterdir():
        size = data.stat().st_size
        with open(data, "r+b") as file:
            file.truncate(size // 2)


def _corrupt_metadata(checkpoint: Path) -> None:
    (checkpoint / "metadata" / "metadata").write_text('{"format": 1, "leaves": [')


@pytest.mark.parametrize("damage", [_truncate_array_files, _corrupt_metadata])
def test_a_damaged_checkpoint_is_refused_naming_the_intact_ones(damage, finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run / "checkpoints" / "1024")
    result = run_cli("train", "--resume", str(run), "--total-steps", "2048", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"Checkpoint {run / 'checkpoints' / '1024'} is damaged" in result.stderr
    assert "The other complete checkpoints are steps [512]" in result.stderr
    # A usage error, not a traceback of ours (orbax's event loop may print its own
    # "Event loop is closed" noise as the process exits after a failed read).
    assert "DamagedCheckpointError:" not in result.stderr
    assert "memorax/checkpoints" not in result.stderr
    # After the advice (delete the damaged one) the run continues from step 512.
    shutil.rmtree(run / "checkpoints" / "1024")
    resumed = run_cli("train", "--resume", str(run), "--total-steps", "2048", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert complete_steps(run)[-1] == 2048


# --------------------------------------------------------------------------- 5. full disk

FULL_DISK = """
set -u
mount -t tmpfs -o size=48m tmpfs "$MOUNT" || exit 90
cd "$MOUNT"
"$PYTHON" "$CLI" train --env gymnax::CartPole-v1 --seeds 1 --total-steps 2000000 \\
    --checkpoint-every 1 --out run > "$LOGS/train.out" 2> "$LOGS/train.err" &
pid=$!
until ls run/checkpoints/*/commit_success.txt > /dev/null 2>&1 || ! kill -0 $pid 2> /dev/null
do sleep 0.05; done
dd if=/dev/zero of=filler bs=1M 2> /dev/null  # the disk is full from here on
wait $pid
echo $? > "$LOGS/train.rc"
"$PYTHON" "$LOGS/ckpt_full.py" "$MOUNT/ckpt" > "$LOGS/ckpt_full.json" 2> "$LOGS/ckpt_full.err"
ls run/checkpoints > "$LOGS/folders.txt"
rm filler
"$PYTHON" "$CLI" train --resume run --total-steps 2048 > "$LOGS/resume.out" 2>&1
echo $? > "$LOGS/resume.rc"
"""


def _can_mount_a_private_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /tmp"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _can_mount_a_private_tmpfs(),
    reason="needs `unshare -rm` (a user namespace) to mount a small tmpfs as the full disk",
)
def test_a_full_disk_stops_with_a_clear_error_and_the_checkpoint_survives(tmp_path):
    logs, mount = tmp_path / "logs", tmp_path / "mount"
    logs.mkdir()
    mount.mkdir()
    (logs / "ckpt_full.py").write_text(CHECKPOINT_ON_FULL_DISK_SCRIPT)
    env = {**os.environ, "MOUNT": str(mount), "LOGS": str(logs), "PYTHON": sys.executable,
           "CLI": str(FAULT_CLI)}  # fmt: skip
    done = subprocess.run(["unshare", "-rm", "bash", "-c", FULL_DISK], env=env, timeout=900)
    assert done.returncode == 0
    error = (logs / "train.err").read_text()
    assert (logs / "train.rc").read_text().strip() == "1", error[-3000:]
    assert "memorax train: error: disk full: [Errno 28] No space left on device" in error
    assert "The disk holding run is full: free space" in error
    assert "Traceback" not in error
    assert (logs / "folders.txt").read_text().split(), "the checkpoint before the fault is kept"
    # A checkpoint write that hit the full disk: an OSError(ENOSPC) the CLI recognises,
    # and the checkpoint before it is complete and restores.
    outcome = json.loads((logs / "ckpt_full.json").read_text())
    assert outcome == {"raised": "OSError", "disk_full": True, "steps": [1], "restored": 1.0}
    # With space freed the run continues from its last checkpoint.
    assert (logs / "resume.rc").read_text().strip() == "0", (logs / "resume.out").read_text()


CHECKPOINT_ON_FULL_DISK_SCRIPT = """
import json, os, subprocess, sys
import numpy as np
from memorax.checkpoints import Checkpointer
from memorax.cli.training_run import is_disk_full

run = sys.argv[1]
checkpointer = Checkpointer(run, max_to_keep=None)
outcome = {}
# The training run left the disk full; make room for one small checkpoint, save it, fill again.
os.remove(os.path.join(os.path.dirname(run), "filler"))
checkpointer.save(1, {"w": np.full((1024, 256), 1.0, np.float32)})
subprocess.run(["dd", "if=/dev/zero", f"of={os.path.dirname(run)}/filler", "bs=1M"],
               stderr=subprocess.DEVNULL)
try:
    checkpointer.save(2, {"w": np.full((1024, 256), 2.0, np.float32)})
    outcome["raised"] = None
except Exception as error:
    outcome["raised"] = type(error).__name__
    outcome["disk_full"] = is_disk_full(error)
reader = Checkpointer(run, None)
outcome["steps"] = reader.steps()
outcome["restored"] = float(reader.restore({"w": np.zeros((1024, 256), np.float32)})["w"].mean())
print(json.dumps(outcome))
"""


# --------------------------------------------------------------------------- 6. soak


def _soak_module():
    spec = importlib.util.spec_from_file_location("soak", ROOT / "benchmarks" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_many_train_and_evaluate_calls_keep_memory_threads_and_processes_flat(tmp_path):
    # The full soak (2,000 + 500 calls) is benchmarks/soak.py; CI runs a shorter one.
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--jax-calls", "300",
         "--callback-calls", "60", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    cases = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [case["env"] for case in cases] == ["gymnax::CartPole-v1", "pufferlib::CartPole-v1"]
    bound = _soak_module().RSS_GROWTH_BOUND_MB
    for case in cases:
        assert case["rss_growth_mb"] < bound, case
        assert case["threads_end"] <= case["threads_after_warmup"], case
        assert case["children_after_close"] == 0, case
    assert cases[1]["children_while_open"] == 2  # PufferLib's two workers, then none
