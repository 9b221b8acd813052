"""Hyperparameter sweeps in one program: settings x seeds under ``jax.vmap``.

A :class:`Sweep` takes an agent and, per swept hyperparameter, one value per
setting. Its ``init`` and ``train`` are one jitted program over
``[settings, seeds]``: every setting's agent is the same agent built again
inside the program with its float config fields as traced values, so K
settings of S seeds compile once and train together, and setting k equals
the run the agent's own ``init``/``train`` gives with that config.

What can be swept: the float fields of the agent's config (discount, GAE or
Q lambda, clip, loss coefficients, epsilon schedule ends, Polyak tau, ...),
and ``"learning_rate"`` when the optimizers are built with
``optax.inject_hyperparams`` (then every optimizer's learning rate takes the
setting's value). Integer and boolean fields (``num_envs``, ``num_steps``,
sizes, switches) shape the compiled program and stay static; sweeping one is
refused with the reason, as is a float field the agent uses to build its
program rather than inside it. Each concrete setting is checked by the
config's own rules when the sweep is built.

    sweep = Sweep(agent, {"gamma": [0.9, 0.99], "learning_rate": [1e-4, 1e-3]})
    states = sweep.init(jax.random.key(0), num_seeds=4)   # leaves [2, 4, ...]
    states = sweep.train(jax.random.key(1), states, 100_000)
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from memorax.algorithms.agent import Agent
from memorax.algorithms.checks import num_iterations
from memorax.algorithms.metrics import empty_metrics

__all__ = ["LEARNING_RATE", "Sweep", "grid"]

LEARNING_RATE = "learning_rate"
"""The name that sweeps the optimizers' learning rate (``optax.inject_hyperparams``)."""


def grid(**axes: Sequence[float]) -> dict[str, list[float]]:
    """Every combination of the given values, as one list per name (the first name slowest).

    ``grid(gamma=[0.9, 0.99], learning_rate=[1e-4, 1e-3])`` gives four settings.
    """
    names = list(axes)
    combos = list(itertools.product(*(list(values) for values in axes.values())))
    return {name: [float(combo[index]) for combo in combos] for index, name in enumerate(names)}


class Sweep:
    """K settings of an agent's hyperparameters, trained with S seeds each in one program.

    Args:
        agent: a built agent; its config gives the values not swept.
        values: ``{name: [value per setting]}``, every list of one length K
            (:func:`grid` builds a cartesian product). Names are float fields
            of ``agent.config`` or ``"learning_rate"``.

    Attributes:
        settings: the K settings, one ``{name: value}`` dict each.
    """

    def __init__(self, agent: Agent, values: Mapping[str, Sequence[float]]):
        self.agent = agent
        self._values = {name: [float(v) for v in vs] for name, vs in values.items()}
        _check_values(agent, self._values)
        count = len(next(iter(self._values.values())))
        self.settings = [{n: vs[k] for n, vs in self._values.items()} for k in range(count)]
        self._config_names = [name for name in self._values if name != LEARNING_RATE]
        for name in self._config_names:
            self._check_traceable(name)
        self._init_jit = jax.jit(self._init)
        self._train_jit = jax.jit(self._train, static_argnames="iterations")

    def _check_traceable(self, name: str) -> None:
        """Refuses ``name`` if building the agent needs its value (not only its program)."""
        value = getattr(self.agent.config, name)
        try:
            jax.eval_shape(lambda v: (self._agent_for({name: v}), v)[1], jnp.float32(value))
        except jax.errors.ConcretizationTypeError as error:
            raise ValueError(
                f"Sweep: {type(self.agent).__name__} uses {name} to build its program (e.g. "
                "to configure its buffer), not only inside it, so it cannot be swept in one "
                "program; train separate agents for its values."
            ) from error

    @property
    def num_settings(self) -> int:
        """K, the number of settings."""
        return len(self.settings)

    def _arrays(self) -> dict[str, jax.Array]:
        return {name: jnp.asarray(vs, jnp.float32) for name, vs in self._values.items()}

    def _agent_for(self, values: Mapping[str, jax.Array]) -> Agent:
        """The agent built again with one setting's (traced) config values."""
        names = [name for name in values if name != LEARNING_RATE]
        if not names:
            return self.agent
        swept = {name: values[name] for name in names}
        config = dataclasses.replace(self.agent.config, **swept)
        args, kwargs = self.agent._constructor_arguments
        if args:
            args = (config, *args[1:])
        else:
            kwargs = {**kwargs, "config": config}
        return type(self.agent)(*args, **kwargs)

    def _init(self, keys: jax.Array, values: dict[str, jax.Array]) -> Any:
        def one_setting(setting: dict[str, jax.Array], keys: jax.Array) -> Any:
            agent = self._agent_for(setting)
            states = jax.vmap(agent._init)(keys)
            if LEARNING_RATE in setting:
                states = _with_learning_rate(states, setting[LEARNING_RATE])
            return states

        return jax.vmap(one_setting)(values, keys)

    def init(self, key: jax.Array, num_seeds: int) -> Any:
        """Initial states of every setting and seed: leaves ``[settings, seeds, ...]``.

        Seed s of every setting starts from the same key, so settings differ
        only by their hyperparameters.
        """
        if not isinstance(num_seeds, int) or num_seeds < 1:
            raise ValueError(f"Sweep.init: num_seeds must be a positive int, got {num_seeds!r}.")
        seed_keys = jax.random.split(key, num_seeds)
        keys = jnp.broadcast_to(seed_keys, (self.num_settings, *seed_keys.shape))
        return self._init_jit(keys, self._arrays())

    def _train(
        self, keys: jax.Array, states: Any, values: dict[str, jax.Array], iterations: int
    ) -> Any:
        def one_setting(setting: dict[str, jax.Array], keys: jax.Array, states: Any) -> Any:
            agent = self._agent_for(setting)

            def one_seed(key: jax.Array, state: Any) -> Any:
                # As Agent.train: the iterations' metrics replace empty ones.
                state = state.replace(metrics=empty_metrics(agent.metric_names))
                return agent._train(key, state, iterations)

            return jax.vmap(one_seed)(keys, states)

        return jax.vmap(one_setting)(values, keys, states)

    def train(self, key: jax.Array, states: Any, num_steps: int) -> Any:
        """Train every setting and seed for ``num_steps`` env steps each (one program).

        Seed s of every setting trains with the same key (as the seeds'
        separate runs would with ``jax.random.split(key, num_seeds)[s]``).
        """
        agent = self.agent
        owner, per_iteration = "Sweep.train", agent.config.steps_per_iteration
        iterations = num_iterations(owner, num_steps, per_iteration, agent.iteration_unit)
        shape = np.shape(jax.tree.leaves(states.env_steps)[0])
        if len(shape) != 2 or shape[0] != self.num_settings:
            raise ValueError(
                f"Sweep.train: states must come from this sweep's init (leading axes "
                f"[settings={self.num_settings}, seeds]), got env_steps of shape {shape}."
            )
        seed_keys = jax.random.split(key, shape[1])
        keys = jnp.broadcast_to(seed_keys, (self.num_settings, *seed_keys.shape))
        # The previous call's metrics are not an input: each seed starts from empty ones.
        states = states.replace(metrics=None)
        return self._train_jit(keys, states, self._arrays(), iterations=iterations)


def _check_values(agent: Agent, values: dict[str, list[float]]) -> None:
    """Refuses names that cannot be swept, ragged lists and values the config rejects."""
    if not values:
        raise ValueError("Sweep: name at least one hyperparameter to sweep.")
    lengths = {name: len(vs) for name, vs in values.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(
            f"Sweep: every hyperparameter needs one value per setting, got {lengths}; "
            "use memorax.algorithms.sweep.grid(...) for every combination."
        )
    config = agent.config
    fields = {field.name: field for field in dataclasses.fields(config)}
    for name in values:
        if name == LEARNING_RATE:
            continue
        if name not in fields:
            floats = sorted(n for n in fields if isinstance(getattr(config, n), float))
            raise ValueError(
                f"Sweep: {type(config).__name__} has no field {name!r}; sweepable: "
                f"{[*floats, LEARNING_RATE]}."
            )
        current = getattr(config, name)
        if not isinstance(current, float):
            raise ValueError(
                f"Sweep: {type(config).__name__}.{name} is {current!r}, not a float: integer, "
                "boolean and optional fields shape the compiled program (array sizes, loop "
                "lengths, branches) and stay static. Run one sweep per value instead."
            )
    for k in range(len(next(iter(values.values())))):
        setting = {n: vs[k] for n, vs in values.items() if n != LEARNING_RATE}
        try:
            dataclasses.replace(config, **setting)
        except ValueError as error:
            raise ValueError(f"Sweep: setting {k} ({setting}): {error}") from error
    if LEARNING_RATE in values:
        state = jax.eval_shape(agent.init, jax.random.key(0))
        if not _injected_states(state):
            raise ValueError(
                "Sweep: to sweep learning_rate, build the agent's optimizers with "
                "optax.inject_hyperparams, e.g. optax.inject_hyperparams(optax.adam)"
                "(learning_rate=3e-4); its state then holds the rate each setting sets."
            )
        if any(value <= 0 for value in values[LEARNING_RATE]):
            raise ValueError(
                f"Sweep: learning_rate values must be > 0, got {values[LEARNING_RATE]}."
            )


def _is_injected(node: Any) -> bool:
    return isinstance(node, optax.InjectHyperparamsState) or (
        hasattr(optax, "InjectStatefulHyperparamsState")
        and isinstance(node, optax.InjectStatefulHyperparamsState)
    )


def _injected_states(state: Any) -> list[Any]:
    leaves = jax.tree.leaves(state, is_leaf=_is_injected)
    return [leaf for leaf in leaves if _is_injected(leaf) and LEARNING_RATE in leaf.hyperparams]


def _with_learning_rate(states: Any, rate: jax.Array) -> Any:
    """``states`` with every injected optimizer's learning rate set to ``rate``."""

    def set_rate(node: Any) -> Any:
        if not (_is_injected(node) and LEARNING_RATE in node.hyperparams):
            return node
        current = node.hyperparams[LEARNING_RATE]
        hyperparams = {**node.hyperparams, LEARNING_RATE: jnp.broadcast_to(
            jnp.asarray(rate, current.dtype), current.shape)}  # fmt: skip
        return node._replace(hyperparams=hyperparams)

    return jax.tree.map(set_rate, states, is_leaf=_is_injected)
