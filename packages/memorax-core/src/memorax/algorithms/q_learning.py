"""What the value-based agents (PQN, DQN, R2D2) share: one Q-network, acting epsilon-greedily.

A linear epsilon schedule, epsilon-greedy actions, and :class:`QLearningAgent`,
the skeleton's subclass that takes one Q-network and its optimizer, checks the
network's head against the env's discrete actions, acts epsilon-greedily while
training and greedily (``argmax_a Q``) when evaluated.
"""

from __future__ import annotations

from typing import Any, TypeVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from memorax.algorithms.acting import EvaluationResult, Policy, StepInput, apply_network
from memorax.algorithms.agent import Agent, with_gradient_clipping
from memorax.algorithms.checks import AgentConfig, check_discrete_q_network
from memorax.algorithms.data_parallel import LaidOutByFields, OnEnvAxis
from memorax.algorithms.metrics import MetricsCallback
from memorax.buffers import BufferState
from memorax.envs import Environment

__all__ = ["QLearningAgent", "QReplayState", "epsilon_greedy", "linear_epsilon"]

ConfigT = TypeVar("ConfigT", bound=AgentConfig)
StateT = TypeVar("StateT")


def linear_epsilon(env_steps: jax.Array, start: float, end: float, decay_steps: int) -> jax.Array:
    """Epsilon after ``env_steps`` env steps (all copies counted).

    Moves linearly from ``start`` (at step 0) to ``end`` (at ``decay_steps``)
    and stays at ``end`` afterwards; ``decay_steps = 0`` means ``end`` at once.

    Returns:
        float32 with the shape of ``env_steps``.
    """
    if decay_steps <= 0:
        return jnp.full(jnp.shape(env_steps), end, jnp.float32)
    fraction = jnp.clip(jnp.asarray(env_steps, jnp.float32) / decay_steps, 0.0, 1.0)
    return (start + fraction * (end - start)).astype(jnp.float32)


def epsilon_greedy(key: jax.Array, q_values: jax.Array, epsilon: jax.Array) -> jax.Array:
    """Per row, a uniformly random action with probability ``epsilon``, else ``argmax_a Q``.

    Args:
        key: PRNG key.
        q_values: ``[B, num_actions]``.
        epsilon: scalar (or ``[B]``) exploration rate.

    Returns:
        ``[B]`` int32 action indices in ``[0, num_actions)``.
    """
    explore_key, random_key = jax.random.split(key)
    batch, num_actions = q_values.shape
    greedy = jnp.argmax(q_values, axis=-1).astype(jnp.int32)
    random = jax.random.randint(random_key, (batch,), 0, num_actions, jnp.int32)
    explore = jax.random.uniform(explore_key, (batch,)) < epsilon
    return jnp.where(explore, random, greedy)


class QLearningAgent(Agent[ConfigT, StateT]):
    """Base of the agents that learn one Q-network with a ``DiscreteQNetwork`` head.

    Args:
        config: the agent's config (it has ``max_grad_norm`` and the epsilon schedule).
        env: a batched env from ``make(...)`` with a ``Discrete`` action space.
        env_params: the params ``make`` returned (``None`` for callback envs).
        network: a :class:`~memorax.networks.Network` with a
            :class:`~memorax.networks.DiscreteQNetwork` head.
        optimizer: an optax transformation (gradient clipping by
            ``config.max_grad_norm`` is applied before it).
        metrics_callback: optional host function called after every iteration
            with a dict of its metrics plus ``"seed"``.
    """

    def __init__(
        self,
        config: ConfigT,
        env: Environment,
        env_params: Any,
        network: nn.Module,
        optimizer: optax.GradientTransformation,
        *,
        metrics_callback: MetricsCallback | None = None,
    ):
        networks, optimizers = {"network": network}, {"optimizer": optimizer}
        super().__init__(
            config,
            env,
            env_params,
            networks=networks,
            optimizers=optimizers,
            metrics_callback=metrics_callback,
        )
        check_discrete_q_network(env, network, type(self).__name__)
        self.network = network
        self.carry_networks = {"carry": network}
        self.optimizer = with_gradient_clipping(optimizer, self.config.max_grad_norm)  # type: ignore[attr-defined]
        self._prepare()

    def _prepare(self) -> None:
        """What the agent sets up once the network is checked (buffers, its own checks)."""

    def _greedy_action(self, output: jax.Array) -> jax.Array:
        return jnp.argmax(output[:, 0], axis=-1).astype(jnp.int32)

    def _epsilon(self, state: Any) -> jax.Array:
        """The exploration rate of the iteration that starts at ``state``."""
        config: Any = self.config
        return linear_epsilon(
            state.env_steps, config.epsilon_start, config.epsilon_end, config.epsilon_decay_steps
        )

    def _epsilon_greedy(
        self, params: Any, epsilon: jax.Array, keep: tuple[str, ...] = ()
    ) -> Policy:
        """The acting policy; it keeps the named extras of each step: ``"q_value"`` (Q of
        the action taken), ``"carry"`` (the carry it acted with), ``"carry_after"``."""

        def policy(key: jax.Array, inputs: StepInput, carries: tuple) -> tuple:
            carry, q = apply_network(self.network, params, inputs.with_time_axis(), carries[0])
            action = epsilon_greedy(key, q[:, 0], epsilon)
            extras = {"carry": carries[0], "carry_after": carry}
            if "q_value" in keep:
                extras["q_value"] = jnp.take_along_axis(q[:, 0], action[:, None], axis=-1)[:, 0]
            return (carry,), action, {name: extras[name] for name in keep}

        return policy


class QReplayState(struct.PyTreeNode):
    """The fields of a Q-learning agent with replay and a target network (DQN, R2D2);
    each agent's state subclasses it and documents them."""

    params: Any
    target_params: Any
    optimizer_state: Any
    buffer_state: LaidOutByFields[BufferState]
    env_state: OnEnvAxis[Any]
    observation: OnEnvAxis[jax.Array]
    episode_start: OnEnvAxis[jax.Array]
    previous_action: OnEnvAxis[jax.Array]
    previous_reward: OnEnvAxis[jax.Array]
    carry: OnEnvAxis[Any]
    env_steps: jax.Array
    gradient_steps: jax.Array
    update_count: jax.Array
    metrics: dict[str, jax.Array]
    evaluation: EvaluationResult
