"""The agent skeleton: everything an agent does that is not its algorithm, written once.

An agent subclasses :class:`Agent` and supplies its ``Config`` (an
:class:`~memorax.algorithms.checks.AgentConfig`), its ``State`` (a pytree
whose env-axis fields are typed
:data:`~memorax.algorithms.data_parallel.OnEnvAxis`) and its algorithm:

- ``_initial_state(keys, acting)``: parameters, optimizer states, buffers;
- ``_iterate(key, state) -> (state, metrics, episodes)``: one training
  iteration, usually a :meth:`Agent._rollout` with its policy followed by
  its update;
- ``_greedy_action(output)``: the evaluation policy's action from the
  policy network's output.

The skeleton owns the rest: argument checks, ``num_envs`` from the env,
``init / train / evaluate / reset_env`` and their jit wiring, the rollout
scan, the per-iteration counters and episode metrics, the metrics stream,
evaluation (on the training env or a separate one) and data-parallel
placement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from memorax.algorithms.acting import (
    EvaluationResult,
    Policy,
    StepInput,
    Transition,
    apply_network,
    env_action,
    network_arguments,
    rollout,
    run_episodes,
    zero_actions,
)
from memorax.algorithms.checks import (
    AgentConfig,
    check_agent_arguments,
    check_evaluate_arguments,
    check_evaluation_env,
    num_iterations,
)
from memorax.algorithms.data_parallel import (
    data_parallel_for,
    declared_env_axes,
    place,
    put_replicated,
    split,
)
from memorax.algorithms.metrics import MetricsCallback, emit, empty_metrics, episode_metrics
from memorax.algorithms.non_finite import check_finite_update
from memorax.envs import Environment, EpisodeStatistics
from memorax.envs.host_callbacks import surface_host_errors

__all__ = ["Agent", "apply_gradients", "with_gradient_clipping"]

ConfigT = TypeVar("ConfigT", bound=AgentConfig)
StateT = TypeVar("StateT")


class Agent(Generic[ConfigT, StateT]):
    """Base of every Memorax agent; see the module docstring for what a subclass supplies.

    Class attributes a subclass sets:
        config_class: its config dataclass (checked in the constructor).
        state_class: its state pytree.
        metric_names: the keys of ``state.metrics``; the skeleton adds
            ``episode_return``, ``episode_length``, ``episode_count``,
            ``env_steps`` and ``update``, the agent the rest.
        iteration_unit: what one iteration is called in messages (``"update"``).

    Attributes set by the constructor:
        config: the config with ``num_envs`` taken from the env.
        env: the env wrapped in :class:`~memorax.envs.EpisodeStatistics`.
        env_params: the env's params (``None`` for callback envs).
        carry_networks: ``{state field: network}`` for every torso carry the
            agent keeps while acting (the subclass fills it in).
        policy_network: the network :meth:`evaluate` acts with.
        data_parallel: the device layout, ``None`` on one device.
    """

    config_class: ClassVar[type[AgentConfig]]
    state_class: ClassVar[type]
    metric_names: ClassVar[tuple[str, ...]]
    iteration_unit: ClassVar[str] = "iteration"
    _constructor_arguments: tuple[tuple[Any, ...], dict[str, Any]]

    def __new__(cls, *args: Any, **kwargs: Any) -> Agent:
        agent = super().__new__(cls)
        # What the agent was built from, so that a sweep can build it again with
        # another config (memorax.algorithms.sweep).
        agent._constructor_arguments = (args, kwargs)
        return agent

    def __init__(
        self,
        config: ConfigT,
        env: Environment,
        env_params: Any,
        *,
        networks: Mapping[str, nn.Module],
        optimizers: Mapping[str, Any],
        metrics_callback: MetricsCallback | None,
    ):
        name = type(self).__name__
        check_agent_arguments(
            name, config, self.config_class, env, networks=networks, optimizers=optimizers
        )
        self.config: ConfigT = config.for_env(name, env)
        self.env = EpisodeStatistics(env)
        self.env_params = env_params
        self.metrics_callback = metrics_callback
        self.num_networks = len(networks)
        self.carry_networks: dict[str, nn.Module] = {}
        self.policy_network: nn.Module = next(iter(networks.values()))
        # Env axis of fields whose axis is not the one their State declares.
        self.env_axis_overrides: dict[str, int] = {}
        devices = getattr(config, "num_devices", None)  # configs without it train on one
        self.data_parallel = data_parallel_for(name, env, env.num_envs, devices)
        self._init_jit = jax.jit(self._init)
        self._train_jit = jax.jit(self._train, static_argnames="num_iterations")
        self._evaluate_jit = jax.jit(
            self._evaluate, static_argnames=("eval_env", "num_episodes", "max_steps")
        )
        self._reset_jit = jax.jit(self._reset_training_env)

    # ------------------------------------------------------------------ public API

    def init(self, key: jax.Array) -> StateT:
        """Initial parameters, optimizer states, counters and a freshly reset env (jitted).

        Args:
            key: a PRNG key (``jax.vmap(agent.init)`` over keys initialises
                several seeds of a JAX-native env).

        Returns:
            The agent's state with zero counters, empty metrics and evaluation.
        """
        return self._call(self._init_jit, key)

    def train(self, key: jax.Array, state: StateT, num_steps: int) -> StateT:
        """Train for ``num_steps`` env steps (all copies counted), jitted.

        Runs ``num_steps // (num_envs * config.num_steps)`` iterations, warning
        when ``num_steps`` is not a multiple of that. ``num_steps`` is static:
        each new value compiles once. ``jax.vmap(agent.train, in_axes=(0, 0,
        None))`` trains several seeds of a JAX-native env at once.

        Args:
            key: PRNG key for actions, env steps and the updates.
            state: from :meth:`init` or an earlier :meth:`train`.
            num_steps: env steps to take, a Python int.

        Returns:
            The new state; ``state.metrics`` holds one value per iteration
            (``[num_iterations]`` arrays, ``[seeds, num_iterations]`` under
            vmap), keys :attr:`metric_names`.
        """
        owner, per_iteration = f"{type(self).__name__}.train", self.config.steps_per_iteration
        iterations = num_iterations(owner, num_steps, per_iteration, self.iteration_unit)
        metrics = put_replicated(self.data_parallel, empty_metrics(self.metric_names))
        state = state.replace(metrics=metrics)  # type: ignore[attr-defined]
        # With the non-finite guard on, train waits for its result, so that a NaN update
        # arrives here as NonFiniteError rather than later as JAX's JaxRuntimeError.
        return self._call(
            self._train_jit, key, state, num_iterations=iterations, wait=self.config.check_finite
        )

    def evaluate(
        self,
        key: jax.Array,
        state: StateT,
        num_episodes: int = 1,
        *,
        env: Environment | None = None,
        env_params: Any = None,
        max_steps: int = 100_000,
    ) -> StateT:
        """Run complete episodes with the deterministic policy.

        Each env copy records its first ``num_episodes`` episodes; results go
        to ``state.evaluation`` (returns, lengths, count). Parameters,
        optimizer states, buffers, counters and training metrics are never
        changed.

        With the training env: a JAX-native env is reset from ``key`` into a
        separate state, so training continues untouched. A callback env has
        one real env behind it, which evaluation resets; the returned state
        then holds a freshly reset training env (episodes in progress are
        lost) and the state passed in is stale: the env refuses to step it.
        Pass ``env=`` (and ``env_params=``) to evaluate on a separate env
        with the same spaces instead; the training env is not touched.

        Args:
            key: PRNG key for the evaluation env.
            state: the agent state.
            num_episodes: episodes recorded per env copy.
            env, env_params: optional separate evaluation env.
            max_steps: steps per env copy at most; episodes unfinished by then
                are recorded as NaN returns.

        Returns:
            ``state`` with ``evaluation`` replaced (and, for a callback
            training env evaluated in place, its env re-reset).
        """
        name = type(self).__name__
        check_evaluate_arguments(f"{name}.evaluate", num_episodes, max_steps)
        training_env = self.env.env
        separate = env is not None
        if separate:
            check_evaluation_env(env, training_env, name)
        else:
            env, env_params = training_env, self.env_params
        eval_key, reset_key = jax.random.split(key)
        params = self._policy_params(state)
        evaluation = self._call(
            self._evaluate_jit,
            eval_key,
            params,
            env_params,
            eval_env=env,
            host_env=env,
            num_episodes=int(num_episodes),
            max_steps=int(max_steps),
        )
        state = state.replace(evaluation=evaluation)  # type: ignore[attr-defined]
        if not separate and not training_env.capabilities.transparent_state:
            # The host saw the evaluation's resets; start training episodes after them.
            state = self._call(self._reset_jit, reset_key, state)
        return state

    def reset_env(self, key: jax.Array, state: StateT) -> StateT:
        """Start fresh episodes in the training env, keeping everything the agent learned.

        Parameters, optimizer states, buffers, counters and metrics are kept;
        the env state, the next observation, the previous action/reward and
        the carries start a new episode in every copy. Use it after restoring
        a checkpoint of a run on a callback env, whose host env cannot be saved.
        """
        return self._call(self._reset_jit, key, state)

    def _call(
        self,
        jitted: Any,
        *args: Any,
        host_env: Environment | None = None,
        wait: bool = False,
        **kwargs: Any,
    ):
        """``jitted(*args, **kwargs)``; with a host (callback) env or ``wait``, waits for the
        result, so that an error raised on the host (e.g. ``StaleEnvironmentStateError``,
        ``NonFiniteError``) arrives here as itself, not as JAX's ``JaxRuntimeError``.
        Otherwise a JAX-native env is not waited for."""
        env = host_env if host_env is not None else self.env.env
        with surface_host_errors():
            result = jitted(*args, **kwargs)
            leaves = jax.tree.leaves(result)
            if (wait or env.capabilities.execution == "host") and not any(
                isinstance(leaf, jax.core.Tracer) for leaf in leaves
            ):
                jax.block_until_ready(result)
        return result

    # ------------------------------------------------------------------ what agents supply

    def _initial_state(self, keys: list[jax.Array], acting: dict[str, Any]) -> StateT:
        """The state before training from one key per network and the acting fields."""
        raise NotImplementedError

    def _iterate(self, key: jax.Array, state: StateT) -> tuple[StateT, dict[str, Any], Any]:
        """One training iteration: ``(state, the agent's metrics, episode statistics)``."""
        raise NotImplementedError

    def _greedy_action(self, output: Any) -> jax.Array:
        """The evaluation action from the policy network's ``[B, 1, ...]`` output."""
        raise NotImplementedError

    def _policy_params(self, state: StateT) -> Any:
        """The parameters :attr:`policy_network` acts with."""
        return state.params  # type: ignore[attr-defined]

    def _env_action(self, action: jax.Array) -> jax.Array:
        """The policy's action -> the env's (see :func:`~memorax.algorithms.acting.env_action`)."""
        return env_action(self.env.action_space, action)

    def _zero_actions(self, num_envs: int) -> jax.Array:
        """Previous actions fed at an episode start."""
        return zero_actions(self.env.action_space, num_envs)

    def _initial_carries(self, num_envs: int) -> dict[str, Any]:
        """``{state field: the initial carry}`` of every carry the agent acts with."""
        return {field: net.initialize_carry(num_envs) for field, net in self.carry_networks.items()}

    # ------------------------------------------------------------------ the skeleton

    def _init(self, key: jax.Array) -> StateT:
        *network_keys, env_key = jax.random.split(key, self.num_networks + 1)
        state = self._initial_state(network_keys, self._start_episodes(env_key))
        return self._place(state)

    def _counters(self) -> dict[str, Any]:
        """Zero counters, empty metrics and evaluation: fields every state has."""
        return {
            "env_steps": jnp.zeros((), jnp.int32),
            "update_count": jnp.zeros((), jnp.int32),
            "metrics": empty_metrics(self.metric_names),
            "evaluation": EvaluationResult.empty(self.env.num_envs, 1),
        }

    def _start_episodes(self, key: jax.Array) -> dict[str, Any]:
        """A reset training env and the acting fields that go with it."""
        num_envs = self.env.num_envs
        observation, env_state = self.env.reset(key, self.env_params)
        # Weak types from Python scalars made strong, as train returns them, so a state
        # from init and one from train share one compiled train.
        env_state = jax.tree.map(_strongly_typed, env_state)
        start, zero_reward = jnp.ones((num_envs,), bool), jnp.zeros((num_envs,), jnp.float32)
        inputs = StepInput(observation, start, self._zero_actions(num_envs), zero_reward)
        return {"env_state": env_state, **vars(inputs), **self._initial_carries(num_envs)}

    def _reset_training_env(self, key: jax.Array, state: StateT) -> StateT:
        return self._place(state.replace(**self._start_episodes(key)))  # type: ignore[attr-defined]

    def _train(self, key: jax.Array, state: StateT, num_iterations: int) -> StateT:
        name = type(self).__name__

        def iteration(state: Any, key: jax.Array) -> tuple[Any, dict[str, Any]]:
            state = self._place(state)
            state, metrics, episodes = self._iterate(key, state)
            update_count = state.update_count + 1
            state = state.replace(update_count=update_count)
            if self.config.check_finite:
                # The next update waits for the check (it adds zero to the counter).
                checked = check_finite_update(name, self.iteration_unit, state, metrics)
                state = state.replace(update_count=update_count + checked)
            metrics = {
                **metrics,
                **episode_metrics(episodes),
                "env_steps": state.env_steps,
                "update": state.update_count,
            }
            if self.metrics_callback is not None:
                emit(self.metrics_callback, metrics)
            return state, metrics

        state, metrics = jax.lax.scan(iteration, state, jax.random.split(key, num_iterations))
        return self._place(state.replace(metrics=metrics))  # type: ignore[attr-defined]

    def _rollout(self, key: jax.Array, state: Any, policy: Policy) -> tuple[Any, Transition]:
        """``config.num_steps`` steps of every env copy with ``policy``; the state moved on
        (acting fields, carries and ``env_steps``) and the time-major transitions."""
        fields = tuple(self.carry_networks)
        acting = (state.env_state, self._inputs(state), tuple(getattr(state, f) for f in fields))
        num_steps = self.config.num_steps  # type: ignore[attr-defined]
        (env_state, inputs, carries), transitions = rollout(
            key,
            self.env,
            self.env_params,
            policy,
            acting,
            num_steps,
            self._env_action,
            self._split_step,
        )
        new_carries = dict(zip(fields, carries, strict=True))
        env_steps = state.env_steps + self.config.steps_per_iteration
        state = state.replace(
            env_state=env_state, **vars(inputs), **new_carries, env_steps=env_steps
        )
        return state, transitions

    @staticmethod
    def _inputs(fields: Any) -> StepInput:
        """The next step's network inputs kept in a state (or a dict of acting fields)."""
        values = fields if isinstance(fields, dict) else vars(fields)
        return StepInput(**{name: values[name] for name in StepInput.__dataclass_fields__})

    def _init_network(
        self,
        network: nn.Module,
        key: jax.Array,
        acting: dict[str, Any],
        carry: Any,
        **head_inputs: Any,
    ) -> Any:
        """``network``'s variables, initialised on one step of the acting inputs."""
        inputs = self._inputs(acting).with_time_axis()
        return network.init(key, *network_arguments(inputs, carry), **head_inputs)

    def _evaluate(
        self,
        key: jax.Array,
        params: Any,
        env_params: Any,
        *,
        eval_env: Environment,
        num_episodes: int,
        max_steps: int,
    ) -> EvaluationResult:
        network, num_envs = self.policy_network, eval_env.num_envs

        def policy(carry: Any, inputs: StepInput) -> tuple[Any, jax.Array, jax.Array]:
            carry, output = apply_network(network, params, inputs.with_time_axis(), carry)
            action = self._greedy_action(output)
            return carry, action, self._env_action(action)

        carry, previous_action = network.initialize_carry(num_envs), self._zero_actions(num_envs)
        return run_episodes(
            key, eval_env, env_params, policy, carry, previous_action, num_episodes, max_steps
        )[0]

    # ------------------------------------------------------------------ device layout

    def _place(self, state: StateT) -> StateT:
        """Data-parallel: env-axis fields split over the mesh, the rest replicated."""
        return place(self.data_parallel, state, self.env_axis_overrides)

    def _split(self, tree: Any, axis: int = 0) -> Any:
        """Data-parallel: ``tree`` split over the mesh along its env ``axis``."""
        return split(self.data_parallel, tree, axis)

    def _split_step(self, step: tuple[tuple[Any, StepInput, tuple], Transition]) -> Any:
        """One rollout step's ``(acting, transition)`` laid out over the devices."""
        if self.data_parallel is None:
            return step
        (env_state, inputs, carries), transition = step
        carries = tuple(
            self._split(carry, self._env_axis(field))
            for field, carry in zip(self.carry_networks, carries, strict=True)
        )
        return (*self._split((env_state, inputs)), carries), self._split(transition)

    def _env_axis(self, field_name: str) -> int:
        """The env axis of a state field (its declaration, or an override)."""
        declared = declared_env_axes(self.state_class).get(field_name, 0)
        return int(self.env_axis_overrides.get(field_name, declared))


def with_gradient_clipping(
    optimizer: optax.GradientTransformation, max_norm: float | None
) -> optax.GradientTransformation:
    """``optimizer`` applied to gradients scaled down to global norm ``max_norm`` at most.

    The state is ``optimizer``'s own (clipping keeps none), so the optimizer
    state of an agent is the same with and without clipping. ``None`` returns
    ``optimizer`` unchanged.
    """
    if max_norm is None:
        return optimizer

    def update(grads: Any, opt_state: Any, params: Any = None) -> tuple[Any, Any]:
        scale = jnp.minimum(1.0, max_norm / (optax.tree.norm(grads) + 1e-6))
        return optimizer.update(jax.tree.map(lambda g: g * scale, grads), opt_state, params)

    return optax.GradientTransformation(optimizer.init, update)


def apply_gradients(
    optimizer: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any
) -> tuple[Any, Any]:
    """One optimizer step: ``(new params, new optimizer state)``."""
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def _strongly_typed(x: Any) -> Any:
    return jnp.asarray(x, dtype=x.dtype) if getattr(x, "weak_type", False) else x
