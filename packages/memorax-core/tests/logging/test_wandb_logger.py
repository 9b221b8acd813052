"""WandbLogger: offline by default without a login, one grouped run per seed, read back."""

from __future__ import annotations

import math

import pytest

from memorax.logging import WandbLogger, default_wandb_mode

from .wandb_files import read_run


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """No W&B login visible, and W&B's own folders kept inside the test's tmp dir."""
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))


def offline_runs(run_dir):
    """``{display name: parsed run}`` of every offline run under ``run_dir/wandb``."""
    files = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    return [read_run(path) for path in files]


def test_mode_is_offline_without_credentials(no_credentials):
    assert default_wandb_mode() == "offline"


def test_mode_is_online_with_an_api_key_or_a_netrc_login(no_credentials, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert default_wandb_mode() == "online"
    monkeypatch.delenv("WANDB_API_KEY")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "y" * 40 + "\n")
    monkeypatch.setenv("NETRC", str(netrc))
    assert default_wandb_mode() == "online"


def test_wandb_mode_variable_wins(no_credentials, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert default_wandb_mode() == "disabled"


def test_an_unknown_mode_is_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"mode must be one of \('online', 'offline', 'disabled'\)"
    ):
        WandbLogger(tmp_path, mode="dryrun-please")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Two seeds logged offline into one run directory, then a resumed continuation."""
    run_dir = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("NETRC", str(run_dir / "no-netrc"))
        monkeypatch.setenv("WANDB_CONFIG_DIR", str(run_dir / "wandb-config"))
        monkeypatch.setenv("WANDB_CACHE_DIR", str(run_dir / "wandb-cache"))
        monkeypatch.setenv("WANDB_DATA_DIR", str(run_dir / "wandb-data"))
        logger = WandbLogger(run_dir, project="tests", name="cartpole", config={"lr": 0.001})
        mode = logger.mode
        for step in (100, 200):
            for seed in (0, 1):
                ret = math.nan if (step, seed) == (100, 1) else step / 100 + 10 * seed
                logger.log(step, {"episode_return": ret, "update": step // 100}, seed)
        logger.close()
        first = offline_runs(run_dir)
        resumed = WandbLogger(run_dir, project="tests", name="cartpole", resume_step=200)
        resumed.log(300, {"episode_return": 3.0, "update": 3}, seed=0)
        resumed.close()
        return mode, first, offline_runs(run_dir)


def test_offline_runs_are_written_under_the_run_directory(written):
    mode, first, _ = written
    assert mode == "offline"
    assert sorted(run["name"] for run in first) == ["cartpole-seed0", "cartpole-seed1"]


def test_each_seed_is_a_run_in_the_group_with_its_seed_in_the_config(written):
    _, first, _ = written
    for run in first:
        seed = int(run["name"][-1])
        assert (run["group"], run["project"]) == ("cartpole", "tests")
        assert run["config"]["seed"] == seed and run["config"]["lr"] == 0.001


def test_history_holds_every_finite_metric_at_its_env_step(written):
    _, first, _ = written
    runs = {run["name"]: run for run in first}
    seed_0 = [(r["_step"], r["episode_return"], r["update"]) for r in runs["cartpole-seed0"]
              ["history"]]  # fmt: skip
    assert seed_0 == [(100, 1.0, 1), (200, 2.0, 2)]
    seed_1 = runs["cartpole-seed1"]["history"]
    assert [r["_step"] for r in seed_1] == [100, 200]
    assert "episode_return" not in seed_1[0] and seed_1[1]["episode_return"] == 12.0


def test_resuming_continues_the_same_run_id(written):
    _, first, after = written
    ids = {run["name"]: run["id"] for run in first}
    continued = [run for run in after if run["history"] and run["history"][0]["_step"] == 300]
    assert len(continued) == 1
    assert continued[0]["id"] == ids["cartpole-seed0"]


def test_a_directory_with_runs_is_not_reused_without_resume_step(written, tmp_path):
    (tmp_path / "wandb_run_ids.json").write_text('{"0": "abc"}')
    with pytest.raises(FileExistsError, match="pass resume_step="):
        WandbLogger(tmp_path, mode="offline")
