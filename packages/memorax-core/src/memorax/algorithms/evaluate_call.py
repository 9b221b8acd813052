"""The body every agent's ``evaluate`` shares: checks, which env, the run, the re-reset.

An agent evaluates in its training env unless given a separate one. A
JAX-native training env is forked (its state is a value), so training goes
on untouched; a callback env's one real host env is reset by the evaluation,
so the training state is re-reset afterwards in a separate jitted call, which
the host sees strictly after the evaluation episodes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import jax

from memorax.algorithms.argument_checks import check_evaluate_arguments
from memorax.algorithms.q_network_checks import check_evaluation_env
from memorax.envs import Environment

__all__ = ["evaluate_agent"]

State = TypeVar("State")


def evaluate_agent(
    agent: str,
    key: jax.Array,
    state: State,
    policy_params: Any,
    *,
    num_episodes: Any,
    max_steps: Any,
    env: Environment | None,
    env_params: Any,
    training_env: Environment,
    training_env_params: Any,
    evaluate_jit: Callable[..., Any],
    reset_jit: Callable[[jax.Array, State], State],
) -> State:
    """Runs ``evaluate_jit`` on the right env and returns ``state`` with its ``evaluation``.

    Args:
        agent: the agent's name, for messages (``"PPO"``).
        key: PRNG key.
        state: the agent state (a pytree with an ``evaluation`` field).
        policy_params: the parameters the policy acts with.
        num_episodes, max_steps: as the agent's ``evaluate`` takes them.
        env, env_params: a separate evaluation env, or ``None`` for the training env.
        training_env, training_env_params: the env the agent trains on, as the
            user built it (wrappers included).
        evaluate_jit: ``evaluate_jit(key, policy_params, env_params, eval_env=,
            num_episodes=, max_steps=) -> EvaluationResult``.
        reset_jit: ``reset_jit(key, state) -> state`` with fresh training episodes.
    """
    check_evaluate_arguments(f"{agent}.evaluate", num_episodes, max_steps)
    separate = env is not None
    if separate:
        check_evaluation_env(env, training_env, agent)
    else:
        env, env_params = training_env, training_env_params
    eval_key, reset_key = jax.random.split(key)
    evaluation = evaluate_jit(
        eval_key,
        policy_params,
        env_params,
        eval_env=env,
        num_episodes=int(num_episodes),
        max_steps=int(max_steps),
    )
    state = state.replace(evaluation=evaluation)  # type: ignore[attr-defined]
    if not separate and not training_env.capabilities.transparent_state:
        state = reset_jit(reset_key, state)
    return state
