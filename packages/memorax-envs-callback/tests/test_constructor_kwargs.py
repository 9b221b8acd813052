"""Misspelt make() kwargs fail before any env is built, with a suggestion, for every adapter."""

from __future__ import annotations

import gymnasium
import pytest

from memorax.envs import EnvironmentKwargsError, make


def cartpole_with_size(size: int = 3) -> gymnasium.Env:
    """A user's env creator with one keyword argument."""
    del size
    return gymnasium.make("CartPole-v1")


@pytest.mark.parametrize("namespace", ["gymnasium", "pufferlib"])
def test_misspelt_constructor_kwarg_names_the_accepted_ones(namespace: str) -> None:
    with pytest.raises(EnvironmentKwargsError, match=r"'sutton_barto_rewrd'.*sutton_barto_reward"):
        make(f"{namespace}::CartPole-v1", num_envs=2, sutton_barto_rewrd=True)


@pytest.mark.parametrize("namespace", ["gymnasium", "pufferlib"])
def test_constructor_and_gymnasium_make_kwargs_pass_through(namespace: str) -> None:
    env, _ = make(
        f"{namespace}::CartPole-v1", num_envs=2, sutton_barto_reward=True, max_episode_steps=7
    )
    env.close()


def test_user_env_creator_kwargs_are_checked_against_its_signature() -> None:
    with pytest.raises(EnvironmentKwargsError, match=r"'sise' \(did you mean 'size'\?\)"):
        make("pufferlib::Mine", num_envs=2, env_creator=cartpole_with_size, sise=4)


def test_env_creator_taking_any_kwargs_is_not_second_guessed() -> None:
    def anything(**kwargs: object) -> gymnasium.Env:
        return gymnasium.make("CartPole-v1")

    env, _ = make("pufferlib::Mine", num_envs=2, env_creator=anything, whatever=1)
    env.close()
