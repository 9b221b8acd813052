"""The registry's errors: each names what was wrong and the fix."""

from __future__ import annotations

import pytest

from memorax.envs import (
    BackendNotInstalledError,
    EnvironmentKwargsError,
    Namespace,
    UnknownEnvironmentError,
    UnknownNamespaceError,
    make,
    registry,
)

from .countdown import make_countdown


def test_make_builds_the_env_with_num_envs():
    env, params = make("test::Countdown-v0", num_envs=3, time_limit=9)
    assert env.num_envs == 3
    assert params.time_limit == 9


def test_memorax_make_is_the_registry_make():
    import memorax

    assert memorax.make is make


def test_unknown_namespace_lists_known_ones_and_suggests_the_closest():
    with pytest.raises(UnknownNamespaceError) as caught:
        make("gymnx::CartPole-v1")
    message = str(caught.value)
    assert "Did you mean 'gymnax'?" in message
    for known in ("gymnax", "navix", "craftax", "gymnasium", "ale", "pufferlib", "test"):
        assert known in message


def test_first_party_namespace_without_its_package_prints_the_install_command(monkeypatch):
    points = {k: v for k, v in registry._entry_points().items() if k != "ale"}
    monkeypatch.setattr(registry, "_entry_points", lambda: points)
    registry.get_namespace.cache_clear()
    with pytest.raises(BackendNotInstalledError) as caught:
        make("ale::Pong")
    # The index line (once published) and the line that works from a clone today.
    assert 'pip install "memorax-envs-callback[ale]"' in str(caught.value)
    assert 'pip install "./packages/memorax-envs-callback[ale]"' in str(caught.value)
    registry.get_namespace.cache_clear()


def test_namespace_whose_extra_is_missing_prints_the_install_command(monkeypatch):
    missing = Namespace(
        name="test",
        factory=make_countdown,
        env_ids=lambda: ["Countdown-v0"],
        requires=("a_library_that_is_not_installed",),
        install='pip install "memorax-envs-test[extra]"',
    )
    monkeypatch.setattr(registry, "get_namespace", lambda name: missing)
    with pytest.raises(BackendNotInstalledError) as caught:
        make("test::Countdown-v0")
    assert "a_library_that_is_not_installed" in str(caught.value)
    assert 'pip install "memorax-envs-test[extra]"' in str(caught.value)


def test_unknown_env_id_suggests_the_closest_and_lists_the_rest():
    with pytest.raises(UnknownEnvironmentError, match="Did you mean 'Countdown-v0'"):
        make("test::Countdwn-v0")
    with pytest.raises(UnknownEnvironmentError, match="Available: Countdown-v0"):
        make("test::Nothing-v9")


def test_unexpected_kwargs_are_named_with_a_suggestion():
    with pytest.raises(EnvironmentKwargsError) as caught:
        make("test::Countdown-v0", time_limt=3)
    assert "'time_limt' (did you mean 'time_limit'?)" in str(caught.value)
    assert "accepts: time_limit" in str(caught.value)


@pytest.mark.parametrize("bad_id", ["CartPole-v1", "gymnax:CartPole-v1", "::x", "a::b::c", 3])
def test_malformed_ids_explain_the_format(bad_id):
    with pytest.raises(ValueError, match="namespace::id"):
        make(bad_id)


@pytest.mark.parametrize("num_envs", [0, -2, 1.5, True])
def test_num_envs_must_be_a_positive_int(num_envs):
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        make("test::Countdown-v0", num_envs=num_envs)
