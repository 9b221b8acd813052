"""The shared contract suite passes a correct env and catches broken ones."""

from __future__ import annotations

import jax
import pytest

from memorax.envs import make
from memorax.testing import ContractViolation, EnvironmentContract, TruncationCase
from memorax.testing.contract import CompiledEnv, make_rollout


class TestCountdownContract(EnvironmentContract):
    """A correct JAX-native env passes every point."""

    env_ids = ("test::Countdown-v0",)
    num_envs = 3
    # Countdown episodes last at least 3 steps, so a 2-step limit always truncates.
    truncation_case = TruncationCase("test::Countdown-v0", {"time_limit": 2}, 2)


def compile_env(env_id: str, **kwargs) -> CompiledEnv:
    env, params = make(env_id, num_envs=3, **kwargs)
    return CompiledEnv(
        env_id=env_id,
        env=env,
        params=params,
        reset=jax.jit(env.reset),
        step=jax.jit(env.step),
        rollout=jax.jit(make_rollout(env, 8)),
    )


class _Suite(EnvironmentContract):
    num_envs = 3


def test_merged_truncation_is_reported_as_a_time_limit_violation():
    suite = _Suite()
    suite.truncation_case = TruncationCase(
        "test::Countdown-v0", {"time_limit": 2, "fault": "merge_truncation"}, 2
    )
    with pytest.raises(ContractViolation, match=r"\[test::Countdown-v0\].*'time limit'"):
        suite.test_time_limit_truncates_and_resets_in_the_same_step()


def test_missing_final_observation_is_caught():
    suite = _Suite()
    suite.truncation_case = TruncationCase(
        "test::Countdown-v0", {"time_limit": 2, "fault": "no_final_observation"}, 2
    )
    with pytest.raises(ContractViolation, match="final_observation keeps the last one"):
        suite.test_time_limit_truncates_and_resets_in_the_same_step()


def test_a_false_capability_claim_is_caught():
    compiled = compile_env("test::Countdown-v0", fault="claims_host")
    with pytest.raises(ContractViolation, match=r"capabilities\.execution"):
        _Suite().test_execution_place_is_as_declared(compiled)
    with pytest.raises(ContractViolation, match=r"capabilities\.transparent_state"):
        _Suite().test_state_forks_or_refuses_to(compiled)


def test_max_env_ids_variable_keeps_the_first_ids_and_refuses_nonsense(monkeypatch):
    from memorax.testing.contract import MAX_ENV_IDS_VARIABLE, _env_ids_to_check

    ids = ("a::One-v0", "a::Two-v0", "a::Three-v0")
    monkeypatch.delenv(MAX_ENV_IDS_VARIABLE, raising=False)
    assert _env_ids_to_check(ids) == ids
    monkeypatch.setenv(MAX_ENV_IDS_VARIABLE, "1")
    assert _env_ids_to_check(ids) == ("a::One-v0",)
    monkeypatch.setenv(MAX_ENV_IDS_VARIABLE, "5")
    assert _env_ids_to_check(ids) == ids
    for bad in ("0", "first", "-1"):
        monkeypatch.setenv(MAX_ENV_IDS_VARIABLE, bad)
        with pytest.raises(ValueError, match=MAX_ENV_IDS_VARIABLE):
            _env_ids_to_check(ids)
