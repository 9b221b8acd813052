"""Checks of the batched environment contract, as a pytest base class.

Each test method is one contract point. A backend subclasses
:class:`EnvironmentContract` in its own test module; pytest then runs every
point for every id in ``env_ids``. Compiled functions are built once per env
id (a class-scoped fixture) because compiling is the slow part on small
machines.

Capabilities are checked, not trusted: a backend that declares
``vmap_over_seeds`` must give independent results under ``jax.vmap``, and one
that does not must refuse ``jax.vmap`` with an error that says so.

Setting ``MEMORAX_CONTRACT_MAX_ENV_IDS=N`` checks only the first ``N`` ids of
every backend: a quick pass over many installs (``nox -s deps``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.envs import (
    Box,
    Capabilities,
    Discrete,
    Environment,
    EpisodeStatistics,
    InvalidActionError,
    MultiDiscrete,
    Space,
    make,
)

__all__ = ["ContractViolation", "EnvironmentContract", "TruncationCase"]


class ContractViolation(AssertionError):
    """A backend broke a point of the environment contract."""


@dataclass(frozen=True)
class TruncationCase:
    """An env configured with a time limit that random actions never beat.

    Attributes:
        env_id: ``"namespace::id"``.
        make_kwargs: kwargs for ``make`` that set the time limit.
        limit: episode length in steps under those kwargs.
    """

    env_id: str
    make_kwargs: dict[str, Any] = field(default_factory=dict)
    limit: int = 8


@dataclass
class CompiledEnv:
    """One env id's environment and its jitted functions, shared by the checks."""

    env_id: str
    env: Environment
    params: Any
    reset: Callable
    step: Callable
    rollout: Callable


def _violation(env_id: str, point: str, message: str) -> ContractViolation:
    return ContractViolation(f"[{env_id}] contract point '{point}': {message}")


def _check(condition: Any, env_id: str, point: str, message: str) -> None:
    if not bool(condition):
        raise _violation(env_id, point, message)


def sample_actions(space: Space, key: jax.Array, num_envs: int) -> jax.Array:
    """``[num_envs, *space.shape]`` independent samples of ``space``."""
    return jax.vmap(space.sample)(jax.random.split(key, num_envs))


def make_rollout(env: Environment, length: int) -> Callable:
    """A jittable ``(key, params) -> transitions`` of random actions from a fresh reset."""

    def rollout(key: jax.Array, params: Any) -> dict[str, jax.Array]:
        reset_key, steps_key = jax.random.split(key)
        observation, state = env.reset(reset_key, params)

        def one_step(carry, step_key):
            observation, state = carry
            action_key, env_key = jax.random.split(step_key)
            action = sample_actions(env.action_space, action_key, env.num_envs)
            next_obs, state, reward, terminated, truncated, info = env.step(
                env_key, state, action, params
            )
            transition = {
                "observation": observation,
                "action": action,
                "next_observation": next_obs,
                "final_observation": info["final_observation"],
                "reward": reward,
                "terminated": terminated,
                "truncated": truncated,
            }
            if "episode" in info:
                transition["episode_length"] = info["episode"]["length"]
            return (next_obs, state), transition

        _, transitions = jax.lax.scan(
            one_step, (observation, state), jax.random.split(steps_key, length)
        )
        transitions["first_observation"] = observation
        return transitions

    return rollout


def _has_unconditional_callback(jaxpr: Any) -> bool:
    """Whether a host callback runs on every call (not only inside a ``cond`` branch).

    The action range check is a callback that runs only on bad input, inside
    a ``cond``; the bridge of a host env calls back on every step.
    """
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "cond":
            continue
        if "callback" in eqn.primitive.name:
            return True
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns") and _has_unconditional_callback(inner):
                    return True
    return False


def _raised_by(call: Callable[[], Any]) -> BaseException | None:
    """The exception ``call`` raises (waiting for async results), or None."""
    try:
        jax.block_until_ready(call())
    except Exception as error:
        return error
    return None


def _contains_all(space: Space, batch: jax.Array) -> bool:
    flat = jnp.reshape(batch, (-1, *space.shape))
    return bool(jnp.all(jax.vmap(space.contains)(flat)))


MAX_ENV_IDS_VARIABLE = "MEMORAX_CONTRACT_MAX_ENV_IDS"


def _env_ids_to_check(env_ids: tuple[str, ...]) -> tuple[str, ...]:
    """The ids to check: all, or the first N where MEMORAX_CONTRACT_MAX_ENV_IDS=N."""
    limit = os.environ.get(MAX_ENV_IDS_VARIABLE, "").strip()
    if not limit:
        return env_ids
    if not limit.isdigit() or int(limit) < 1:
        raise ValueError(
            f"{MAX_ENV_IDS_VARIABLE}={limit!r}: expected a whole number of env ids >= 1 "
            f"(e.g. {MAX_ENV_IDS_VARIABLE}=1), or unset it to check every id."
        )
    return env_ids[: int(limit)]


class EnvironmentContract:
    """Base class of a backend's contract tests.

    Class attributes a subclass sets:
        env_ids: the ``"namespace::id"`` ids to check.
        num_envs: copies per env (small: compiling dominates).
        make_kwargs: optional per-id kwargs for ``make``.
        rollout_length: steps in the random-action rollout.
        truncation_case: a :class:`TruncationCase`, or ``None`` only for a
            backend that has no time limits at all.
        random_reset: the envs' first observation depends on the key, so
            different keys must give different observations.
    """

    env_ids: tuple[str, ...] = ()
    num_envs: int = 2
    make_kwargs: dict[str, dict[str, Any]] = {}  # noqa: RUF012 - read-only class default
    rollout_length: int = 24
    _compiled_cache: dict[Any, CompiledEnv]
    truncation_case: TruncationCase | None = None
    random_reset: bool = True

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrises every check over ``env_ids``, one compiled env per id."""
        if "env_id" in metafunc.fixturenames:
            if not self.env_ids:
                raise ValueError(
                    f"{type(self).__name__} sets no env_ids: list the 'namespace::id' ids "
                    "the backend must pass the contract for."
                )
            metafunc.parametrize("env_id", _env_ids_to_check(self.env_ids), scope="class")

    @classmethod
    def _compile(cls, env_id: str, make_kwargs: dict[str, Any]) -> CompiledEnv:
        """Builds (or, for device envs, reuses) the env and its jitted functions.

        Device envs are cached per class and kwargs: compiling is the slow
        part, and a time-limit case that names an env id and kwargs already
        checked reuses its compiled rollout instead of compiling another.
        """
        cache = cls.__dict__.get("_compiled_cache")
        if cache is None:
            cache = {}
            cls._compiled_cache = cache
        cache_key = (env_id, tuple(sorted(make_kwargs.items())))
        if cache_key in cache:
            return cache[cache_key]
        env, params = make(env_id, num_envs=cls.num_envs, **make_kwargs)
        compiled = CompiledEnv(
            env_id=env_id,
            env=env,
            params=params,
            reset=jax.jit(env.reset),
            step=jax.jit(env.step),
            rollout=jax.jit(make_rollout(EpisodeStatistics(env), cls.rollout_length)),
        )
        if env.capabilities.execution == "device":
            cache[cache_key] = compiled
        return compiled

    @pytest.fixture(scope="class")
    @classmethod
    def compiled(cls, env_id: str):
        """The env for ``env_id`` with jitted reset, step and rollout."""
        compiled = cls._compile(env_id, cls.make_kwargs.get(env_id, {}))
        yield compiled
        compiled.env.close()

    @pytest.fixture(scope="class")
    @classmethod
    def transitions(cls, compiled: CompiledEnv) -> dict[str, np.ndarray]:
        """One random-action rollout, as numpy arrays."""
        out = compiled.rollout(jax.random.key(0), compiled.params)
        return jax.tree.map(np.asarray, out)

    # -- declarations -------------------------------------------------------

    def test_declares_spaces_and_capabilities(self, compiled: CompiledEnv) -> None:
        """Spaces are Memorax spaces; capabilities are declared; params match them."""
        env, env_id = compiled.env, compiled.env_id
        for name in ("observation_space", "action_space"):
            space = getattr(env, name)
            _check(
                isinstance(space, Space),
                env_id,
                "spaces",
                f"{name} must be a memorax.envs space, got {type(space).__name__}",
            )
        _check(
            isinstance(env.action_space, Discrete | MultiDiscrete | Box),
            env_id,
            "spaces",
            f"action space {env.action_space} is not Discrete, MultiDiscrete or Box",
        )
        _check(
            isinstance(env.capabilities, Capabilities),
            env_id,
            "capabilities",
            "env.capabilities must be a memorax.envs.Capabilities",
        )
        _check(
            env.num_envs == self.num_envs,
            env_id,
            "num_envs",
            f"make(num_envs={self.num_envs}) built an env with num_envs={env.num_envs}",
        )
        if not env.capabilities.has_params:
            _check(
                compiled.params is None,
                env_id,
                "params",
                "a backend without params must return env_params=None from make",
            )

    # -- shapes, dtypes, jit, scan -----------------------------------------

    def test_reset_matches_observation_space(self, compiled: CompiledEnv) -> None:
        """``reset`` under jit returns ``[num_envs, *obs_shape]`` in the space's dtype."""
        env, env_id = compiled.env, compiled.env_id
        observation, _ = compiled.reset(jax.random.key(1), compiled.params)
        expected = (env.num_envs, *env.observation_space.shape)
        _check(
            observation.shape == expected,
            env_id,
            "reset shapes",
            f"observation shape {observation.shape}, expected {expected}",
        )
        _check(
            observation.dtype == jnp.dtype(env.observation_space.dtype),
            env_id,
            "reset dtypes",
            f"observation dtype {observation.dtype}, space says {env.observation_space.dtype}",
        )
        _check(
            _contains_all(env.observation_space, observation),
            env_id,
            "reset values",
            "a reset observation lies outside the observation space",
        )

    def test_step_matches_spaces(self, compiled: CompiledEnv) -> None:
        """``step`` under jit returns the contract's shapes and dtypes."""
        env, env_id = compiled.env, compiled.env_id
        _, state = compiled.reset(jax.random.key(2), compiled.params)
        action = sample_actions(env.action_space, jax.random.key(3), env.num_envs)
        observation, _, reward, terminated, truncated, info = compiled.step(
            jax.random.key(4), state, action, compiled.params
        )
        n = env.num_envs
        expected_obs = (n, *env.observation_space.shape)
        for name, array, shape, dtype in (
            ("observation", observation, expected_obs, env.observation_space.dtype),
            ("reward", reward, (n,), jnp.float32),
            ("terminated", terminated, (n,), jnp.bool_),
            ("truncated", truncated, (n,), jnp.bool_),
        ):
            _check(
                array.shape == shape,
                env_id,
                "step shapes",
                f"{name} has shape {array.shape}, expected {shape}",
            )
            _check(
                array.dtype == jnp.dtype(dtype),
                env_id,
                "step dtypes",
                f"{name} has dtype {array.dtype}, expected {jnp.dtype(dtype)}",
            )
        _check(
            "final_observation" in info,
            env_id,
            "final observation",
            "info must always hold 'final_observation'",
        )
        final = info["final_observation"]
        _check(
            final.shape == expected_obs and final.dtype == observation.dtype,
            env_id,
            "final observation",
            f"final_observation is {final.shape} {final.dtype}, expected {expected_obs} "
            f"{observation.dtype}",
        )

    def test_random_rollout_inside_scan(self, transitions: dict, compiled: CompiledEnv) -> None:
        """Random actions through ``lax.scan`` stay inside the spaces with finite rewards."""
        env, env_id = compiled.env, compiled.env_id
        _check(
            _contains_all(env.observation_space, transitions["next_observation"]),
            env_id,
            "rollout values",
            "an observation inside a scanned rollout lies outside the observation space",
        )
        _check(
            np.all(np.isfinite(transitions["reward"])),
            env_id,
            "rollout values",
            "rewards must be finite",
        )

    # -- auto-reset ---------------------------------------------------------

    def test_final_observation_equals_observation_when_no_episode_ended(
        self, transitions: dict, compiled: CompiledEnv
    ) -> None:
        """Where no episode ended, ``final_observation`` is the returned observation."""
        done = transitions["terminated"] | transitions["truncated"]
        same = np.all(
            (transitions["final_observation"] == transitions["next_observation"]).reshape(
                *done.shape, -1
            ),
            axis=-1,
        )
        _check(
            np.all(same | done),
            compiled.env_id,
            "final observation",
            "final_observation differs from the observation on a step where no episode ended",
        )
        _check(
            _contains_all(compiled.env.observation_space, transitions["final_observation"]),
            compiled.env_id,
            "final observation",
            "final_observation lies outside the observation space",
        )

    def test_time_limit_truncates_and_resets_in_the_same_step(self) -> None:
        """A time-limit end is truncated (not terminated) and the next episode starts at once.

        Under same-step auto-reset, episodes of a ``limit``-step time limit end
        exactly at steps ``limit, 2 * limit, ...``; a backend that leaves a
        reset transition in the stream would end the second one a step late.
        """
        case = self.truncation_case
        if case is None:
            pytest.skip("the backend declares no time limits (truncation_case = None)")
        length = 2 * case.limit + 1
        if self.rollout_length < length:
            raise ValueError(
                f"{type(self).__name__}: rollout_length={self.rollout_length} is too short for a "
                f"{case.limit}-step truncation_case; it needs at least {length} steps."
            )
        compiled = self._compile(case.env_id, case.make_kwargs)
        try:
            out = compiled.rollout(jax.random.key(5), compiled.params)
            out = jax.tree.map(lambda x: np.asarray(x)[:length], out)
        finally:
            compiled.env.close()
        point = "time limit"
        ends = np.zeros_like(out["truncated"])
        ends[case.limit - 1] = True
        ends[2 * case.limit - 1] = True
        _check(
            not out["terminated"].any(),
            case.env_id,
            point,
            "an episode terminated before the time limit: pick a truncation_case where random "
            "actions cannot end the episode",
        )
        _check(
            np.array_equal(out["truncated"], ends),
            case.env_id,
            point,
            f"with a {case.limit}-step limit, truncated must be set exactly at steps "
            f"{case.limit} and {2 * case.limit}; got it at steps "
            f"{sorted(set((np.nonzero(out['truncated'])[0] + 1).tolist()))}",
        )
        lengths = out["episode_length"][ends]
        _check(
            np.all(lengths == case.limit),
            case.env_id,
            point,
            f"episodes under a {case.limit}-step limit had lengths {np.unique(lengths)}",
        )
        changed = np.any(
            (out["final_observation"] != out["next_observation"]).reshape(*ends.shape, -1), -1
        )
        _check(
            np.any(changed[ends]),
            case.env_id,
            point,
            "at a truncation the returned observation must start the next episode while "
            "final_observation keeps the last one; they were equal everywhere",
        )

    # -- determinism ----------------------------------------------------------

    def test_same_key_gives_the_same_rollout(self, compiled: CompiledEnv) -> None:
        """A fixed key reproduces the whole random-action rollout exactly."""
        first = jax.tree.map(np.asarray, compiled.rollout(jax.random.key(7), compiled.params))
        second = jax.tree.map(np.asarray, compiled.rollout(jax.random.key(7), compiled.params))
        for name in first:
            _check(
                np.array_equal(first[name], second[name]),
                compiled.env_id,
                "determinism",
                f"two rollouts from the same key differ in '{name}'",
            )

    def test_different_keys_give_different_first_observations(self, compiled: CompiledEnv) -> None:
        """The reset key reaches the env: different keys start different episodes."""
        if not self.random_reset:
            pytest.skip("the backend's env ids have a deterministic first observation")
        # Several keys, since a small env can start the same way by chance.
        observations = [
            np.asarray(compiled.reset(jax.random.key(seed), compiled.params)[0])
            for seed in range(11, 17)
        ]
        _check(
            any(not np.array_equal(observations[0], other) for other in observations[1:]),
            compiled.env_id,
            "determinism",
            "reset with two different keys gave identical observations: is the key ignored?",
        )

    # -- capabilities ---------------------------------------------------------

    def test_execution_place_is_as_declared(self, compiled: CompiledEnv) -> None:
        """``execution='device'`` traces no host callback into ``step``; ``'host'`` does."""
        env = compiled.env
        _, state = compiled.reset(jax.random.key(8), compiled.params)
        action = sample_actions(env.action_space, jax.random.key(9), env.num_envs)
        closed = jax.make_jaxpr(env.step)(jax.random.key(10), state, action, compiled.params)
        uses_callback = _has_unconditional_callback(closed.jaxpr)
        on_host = env.capabilities.execution == "host"
        _check(
            uses_callback == on_host,
            compiled.env_id,
            "capabilities.execution",
            f"declared execution={env.capabilities.execution!r} but step "
            f"{'calls' if uses_callback else 'does not call'} the host",
        )

    def test_state_forks_or_refuses_to(self, compiled: CompiledEnv) -> None:
        """Transparent state can be stepped twice alike; opaque state refuses the second step."""
        env = compiled.env
        _, state = compiled.reset(jax.random.key(13), compiled.params)
        action = sample_actions(env.action_space, jax.random.key(14), env.num_envs)
        first = compiled.step(jax.random.key(15), state, action, compiled.params)
        jax.block_until_ready(first)
        if env.capabilities.transparent_state:
            second = compiled.step(jax.random.key(15), state, action, compiled.params)
            for name, a, b in zip(first._fields, first, second, strict=True):
                if name == "state":
                    continue
                same = jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), a, b))
                _check(
                    same,
                    compiled.env_id,
                    "capabilities.transparent_state",
                    f"stepping the same state twice with the same key gave different '{name}'",
                )
        else:
            error = _raised_by(
                lambda: compiled.step(jax.random.key(15), state, action, compiled.params)
            )
            _check(
                error is not None and "stale" in str(error).lower(),
                compiled.env_id,
                "capabilities.transparent_state",
                "stepping an opaque state a second time must raise an error that says the "
                f"state is stale; got {error!r}",
            )

    def test_vmap_over_seeds_works_or_is_refused(self, compiled: CompiledEnv) -> None:
        """``vmap`` over reset keys gives independent envs, or a clear refusal."""
        env = compiled.env
        num_seeds = 6
        keys = jax.random.split(jax.random.key(16), num_seeds)
        vmapped_reset = jax.vmap(env.reset, in_axes=(0, None))
        if env.capabilities.vmap_over_seeds:
            # Per-seed actions, as a vmapped agent would produce them.
            actions = jax.vmap(lambda k: sample_actions(env.action_space, k, env.num_envs))(keys)

            def reset_and_step(keys: jax.Array, actions: jax.Array, params: Any):
                observation, state = vmapped_reset(keys, params)
                stepped = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, actions, params)
                return observation, stepped

            # One compiled program for both calls: compiling dominates on big envs.
            observation, stepped = jax.jit(reset_and_step)(keys, actions, compiled.params)
            expected = (num_seeds, env.num_envs, *env.observation_space.shape)
            _check(
                observation.shape == expected,
                compiled.env_id,
                "capabilities.vmap_over_seeds",
                f"vmapped reset gave {observation.shape}, expected {expected}",
            )
            _check(
                stepped.reward.shape == (num_seeds, env.num_envs),
                compiled.env_id,
                "capabilities.vmap_over_seeds",
                f"vmapped step gave rewards of shape {stepped.reward.shape}",
            )
            if self.random_reset:
                _check(
                    not np.all(np.asarray(observation) == np.asarray(observation[:1])),
                    compiled.env_id,
                    "capabilities.vmap_over_seeds",
                    f"{num_seeds} seeds under vmap gave identical first observations",
                )
            self._check_seed_alone(compiled, keys, actions, observation, stepped)
        else:
            # The backend's own refusal names the cause (vmap over seeds), unlike
            # JAX's generic errors about batching a callback.
            _, state = compiled.reset(jax.random.key(17), compiled.params)
            # Per-seed actions, as a vmapped agent would produce them.
            actions = jax.vmap(lambda k: sample_actions(env.action_space, k, env.num_envs))(keys)
            calls = {
                "reset": lambda: vmapped_reset(keys, compiled.params),
                "step": lambda: jax.vmap(env.step, in_axes=(0, None, 0, None))(
                    keys, state, actions, compiled.params
                ),
            }
            for method, call in calls.items():
                error = _raised_by(call)
                message = str(error).lower()
                _check(
                    error is not None and "vmap" in message and "seed" in message,
                    compiled.env_id,
                    "capabilities.vmap_over_seeds",
                    f"jax.vmap over {method} of an env that cannot be vmapped must raise an "
                    f"error that says it cannot be vmapped over seeds; got {error!r}",
                )

    def _check_seed_alone(
        self,
        compiled: CompiledEnv,
        keys: jax.Array,
        actions: jax.Array,
        observation: jax.Array,
        stepped: Any,
    ) -> None:
        """The last seed of a vmapped reset and step equals that seed run alone.

        A host env runs it alone on a freshly made env: under vmap each seed
        steps host envs of its own, so the lone run must not share them.
        """
        env, last = compiled.env, len(keys) - 1
        alone_env = None
        reset, step = compiled.reset, compiled.step
        if env.capabilities.execution == "host":
            make_kwargs = self.make_kwargs.get(compiled.env_id, {})
            alone_env, _ = make(compiled.env_id, num_envs=self.num_envs, **make_kwargs)
            reset, step = jax.jit(alone_env.reset), jax.jit(alone_env.step)
        try:
            alone_observation, state = reset(keys[last], compiled.params)
            alone = step(keys[last], state, actions[last], compiled.params)
            pairs = {
                "first observation": (observation[last], alone_observation),
                "observation": (stepped.observation[last], alone.observation),
                "reward": (stepped.reward[last], alone.reward),
                "terminated": (stepped.terminated[last], alone.terminated),
            }
            for name, (vmapped, single) in pairs.items():
                vmapped, single = np.asarray(vmapped), np.asarray(single)
                _check(
                    vmapped.shape == single.shape
                    and np.allclose(vmapped, single, rtol=1e-5, atol=1e-6),
                    compiled.env_id,
                    "capabilities.vmap_over_seeds",
                    f"seed {last} of a vmapped reset and step gave another {name} than the "
                    "same key and actions alone; each seed must behave as its own env",
                )
        finally:
            if alone_env is not None:
                alone_env.close()

    # -- bad input ------------------------------------------------------------

    def test_wrong_action_shape_is_a_clear_error(self, compiled: CompiledEnv) -> None:
        """A missing batch axis or a wrong num_envs is refused before the env runs."""
        env = compiled.env
        _, state = compiled.reset(jax.random.key(17), compiled.params)
        single = env.action_space.sample(jax.random.key(18))
        with pytest.raises(InvalidActionError, match="forget the leading num_envs axis"):
            env.step(jax.random.key(19), state, single, compiled.params)
        too_many = sample_actions(env.action_space, jax.random.key(20), env.num_envs + 1)
        with pytest.raises(InvalidActionError, match="agent's num_envs matches make"):
            env.step(jax.random.key(19), state, too_many, compiled.params)

    def test_wrong_action_dtype_is_a_clear_error(self, compiled: CompiledEnv) -> None:
        """Float actions for a discrete space (or ints for a float Box) are refused."""
        env = compiled.env
        _, state = compiled.reset(jax.random.key(21), compiled.params)
        shape = (env.num_envs, *env.action_space.shape)
        if isinstance(env.action_space, Discrete | MultiDiscrete):
            wrong = jnp.zeros(shape, jnp.float32)
            match = "integers"
        elif jnp.issubdtype(env.action_space.dtype, jnp.floating):
            wrong = jnp.zeros(shape, jnp.int32)
            match = "floats"
        else:
            pytest.skip("integer Box action spaces accept integer actions")
        with pytest.raises(InvalidActionError, match=match):
            env.step(jax.random.key(22), state, wrong, compiled.params)

    def test_out_of_range_discrete_action_is_a_clear_error(self, compiled: CompiledEnv) -> None:
        """A discrete action outside the space raises instead of silently wrapping."""
        env = compiled.env
        space = env.action_space
        if isinstance(space, Discrete):
            high = space.start + space.n
        elif isinstance(space, MultiDiscrete):
            high = max(space.nvec)
        else:
            pytest.skip("continuous action spaces have no out-of-range integers")
        _, state = compiled.reset(jax.random.key(23), compiled.params)
        bad = jnp.full((env.num_envs, *space.shape), high, space.dtype)
        with pytest.raises(Exception, match="out of range"):
            jax.block_until_ready(compiled.step(jax.random.key(24), state, bad, compiled.params))
