"""make() kwargs, for every adapter: misspelt ones fail before any env is built, with a
suggestion; the others reach the host env and change what it does."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.envs import Environment, EnvironmentKwargsError, make


def cartpole_with_size(size: int = 3) -> gymnasium.Env:
    """A user's env creator with one keyword argument."""
    del size
    return gymnasium.make("CartPole-v1")


@pytest.mark.parametrize("namespace", ["gymnasium", "pufferlib"])
def test_misspelt_constructor_kwarg_names_the_accepted_ones(namespace: str) -> None:
    with pytest.raises(EnvironmentKwargsError, match=r"'sutton_barto_rewrd'.*sutton_barto_reward"):
        make(f"{namespace}::CartPole-v1", num_envs=2, sutton_barto_rewrd=True)


@pytest.fixture
def make_env() -> Iterator[Callable[..., Environment]]:
    """``make`` whose envs are all closed after the test, also when it fails."""
    made: list[Environment] = []

    def build(env_id: str, **kwargs: object) -> Environment:
        env, _ = make(env_id, **kwargs)
        made.append(env)
        return env

    yield build
    for env in made:
        env.close()


def balance(observation: jax.Array) -> jax.Array:
    """Pushes the cart under the falling pole: keeps CartPole up far longer than 21 steps."""
    return (observation[:, 2] + observation[:, 3] > 0).astype(jnp.int32)


def topple(observation: jax.Array) -> jax.Array:
    """Pushes the cart away from the pole's lean: the pole falls within a few steps."""
    return (observation[:, 2] < 0).astype(jnp.int32)


def roll_out(
    env: Environment, policy: Callable[[jax.Array], jax.Array], num_steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resets ``env`` from a fixed key and steps it with ``policy`` under ``jax.jit``.

    Returns:
        ``(reward, terminated, truncated)``, each ``[num_steps, num_envs]``.
    """

    def run(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        observation, state = env.reset(key)

        def one_step(carry: tuple, step_key: jax.Array) -> tuple:
            observation, state = carry
            out = env.step(step_key, state, policy(observation))
            return (out.observation, out.state), (out.reward, out.terminated, out.truncated)

        _, trace = jax.lax.scan(one_step, (observation, state), jax.random.split(key, num_steps))
        return trace

    reward, terminated, truncated = jax.jit(run)(jax.random.key(0))
    return np.asarray(reward), np.asarray(terminated), np.asarray(truncated)


@pytest.mark.parametrize("namespace", ["gymnasium", "pufferlib"])
def test_max_episode_steps_and_sutton_barto_reward_reach_the_host_env(
    namespace: str, make_env: Callable[..., Environment]
) -> None:
    env_id = f"{namespace}::CartPole-v1"
    configured = make_env(env_id, num_envs=2, sutton_barto_reward=True, max_episode_steps=7)
    control = make_env(env_id, num_envs=2)
    # Sutton-Barto reward alone: the pole can fall before the 500-step default limit.
    sutton_barto = make_env(env_id, num_envs=2, sutton_barto_reward=True)

    # Balancing, the control neither fails nor hits its time limit in 21 steps, +1 a step ...
    reward, terminated, truncated = roll_out(control, balance, 21)
    assert not terminated.any() and not truncated.any()
    np.testing.assert_array_equal(reward, 1.0)
    # ... while max_episode_steps=7 truncates every episode after exactly 7 steps,
    # and the Sutton-Barto reward pays 0 for every step that does not fail.
    reward, terminated, truncated = roll_out(configured, balance, 21)
    assert not terminated.any()
    ends_at_7_14_21 = np.zeros((21, 2), bool)
    ends_at_7_14_21[[6, 13, 20]] = True
    np.testing.assert_array_equal(truncated, ends_at_7_14_21)
    np.testing.assert_array_equal(reward, 0.0)

    # Toppling, the control's pole falls (terminated) and still pays +1 ...
    control_reward, control_terminated, _ = roll_out(control, topple, 20)
    assert control_terminated.any(axis=0).all(), "the topple policy must end every episode"
    np.testing.assert_array_equal(control_reward, 1.0)
    # ... and the same trajectory under the Sutton-Barto reward pays -1 on failure, 0 before.
    reward, terminated, _ = roll_out(sutton_barto, topple, 20)
    np.testing.assert_array_equal(terminated, control_terminated)
    np.testing.assert_array_equal(reward, -control_terminated.astype(np.float32))


def test_user_env_creator_kwargs_are_checked_against_its_signature() -> None:
    with pytest.raises(EnvironmentKwargsError, match=r"'sise' \(did you mean 'size'\?\)"):
        make("pufferlib::Mine", num_envs=2, env_creator=cartpole_with_size, sise=4)


def test_env_creator_taking_any_kwargs_is_not_second_guessed() -> None:
    def anything(**kwargs: object) -> gymnasium.Env:
        return gymnasium.make("CartPole-v1")

    env, _ = make("pufferlib::Mine", num_envs=2, env_creator=anything, whatever=1)
    env.close()
