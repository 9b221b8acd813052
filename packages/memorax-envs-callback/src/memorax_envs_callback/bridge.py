"""The JAX side of every callback backend: one bridge over a host vector env.

A backend adapter (gymnasium, ALE, PufferLib) wraps a real vector env behind
the small :class:`HostVectorEnv` protocol; :class:`CallbackEnvironment` turns
it into a :class:`memorax.envs.Environment` whose ``reset`` and ``step`` can be
jitted and scanned.

Mechanism. Each ``reset``/``step`` is one ``jax.experimental.buffer_callback``
with ``has_side_effect=True``:

* Exactly once: a side-effecting custom call is never removed as dead code,
  merged with an identical call or duplicated by XLA, unlike ``pure_callback``
  (which the compiler may drop when its result is unused, or repeat).
* In order: the state a step consumes (step counter, reset generation) is
  written by the host in the previous call, so each call depends on the one
  before it through data, inside one program and across programs. Programs
  that contain host callbacks also run one after another on the CPU client.
* Checked, not trusted: the host keeps its own step counter and generation and
  compares them with the state it is given, so a dropped, repeated or
  reordered call, or a state made stale by a later ``reset``, raises
  :class:`StaleEnvironmentStateError` instead of silently stepping the wrong
  episode.
* Cheap: ``buffer_callback`` hands the host raw buffers and lets it write the
  outputs in place. Measured on a 2-core CPU it costs about 11 us per call
  against about 130 us for ``pure_callback``/``io_callback`` (whose Python
  wrappers convert every argument and result) and about 160 us for
  ``io_callback(ordered=True)``; for 8 CartPole copies (about 100 us a step)
  that difference decides whether the bridge keeps up with the raw vector env.
  On accelerators ``buffer_callback`` buffers are device memory, so there the
  bridge uses an unordered ``io_callback`` (ordered by the same data chain).

``jax.vmap`` over seeds: a ``custom_vmap`` rule turns a batch of S seeds into
one host call over S host vector envs, the env this bridge was made with and
S - 1 more built by the backend's ``host_factory`` (same constructor and
kwargs) while the program is traced. Each seed's state is checked against its
own host env; nested vmaps flatten onto the same pool. Without a
``host_factory`` the rule refuses with :class:`CallbackVmapError` before any
callback runs.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import threading
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap
from jax.experimental import io_callback
from jax.experimental.buffer_callback import buffer_callback

from memorax.envs import HOST_CALLBACK, Environment, Space, require_host_backend
from memorax.envs.host_callbacks import host_error

__all__ = [
    "CallbackEnvironment",
    "CallbackState",
    "CallbackVmapError",
    "DeviceLayout",
    "HostEnvironmentError",
    "HostStep",
    "HostVectorEnv",
    "StaleEnvironmentStateError",
]

_MAX_SEED = 2**31 - 1


class StaleEnvironmentStateError(RuntimeError):
    """A callback env was stepped with a state that is no longer the host env's current one."""


class CallbackVmapError(ValueError):
    """``jax.vmap`` reached a callback environment."""


class HostEnvironmentError(RuntimeError):
    """The host environment failed (an exception in a worker, a dead process, a closed env)."""


class HostStep(NamedTuple):
    """What a host vector env returns from one step (numpy arrays, leading axis ``num_envs``).

    Attributes:
        observation: ``[num_envs, *obs_shape]``, already reset where an episode ended.
        reward: ``[num_envs]``.
        terminated: ``[num_envs]`` bool.
        truncated: ``[num_envs]`` bool.
        final_observation: ``[num_envs, *obs_shape]``, the last observation of
            the ended episode where one ended, else equal to ``observation``.
    """

    observation: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_observation: np.ndarray


class DeviceLayout(NamedTuple):
    """An observation layout change done by XLA instead of numpy on the host.

    Transposing on the host costs a strided copy every step (for 8 Atari
    frame stacks about 0.4 ms, as much as a third of the emulator's own
    time); the host then writes its arrays as they are (a plain memcpy) and
    the transpose runs in the compiled program.

    Attributes:
        host_shape: the shape of one copy's observation as the host env returns it.
        to_space: maps ``[num_envs, *host_shape]`` to ``[num_envs, *observation_space.shape]``
            with ``jax.numpy`` operations.
    """

    host_shape: tuple[int, ...]
    to_space: Any


class HostVectorEnv(Protocol):
    """What an adapter provides: a vector env on the host with same-step auto-reset.

    Observations must be in the layout of ``observation_space`` (the bridge
    only casts dtypes), unless the adapter has a ``device_layout`` attribute
    (a :class:`DeviceLayout`): then they are in its ``host_shape`` and the
    bridge applies ``to_space`` on the device.
    """

    num_envs: int
    observation_space: Space
    action_space: Space

    def reset(self, seed: int) -> np.ndarray:
        """Resets every copy, seeding the host env from ``seed``; returns ``[num_envs, *obs]``."""
        ...

    def step(self, action: np.ndarray) -> HostStep:
        """Steps every copy with ``action: [num_envs, *action_shape]``."""
        ...

    def close(self) -> None:
        """Releases processes, threads and emulators."""
        ...


class CallbackState(NamedTuple):
    """The opaque state of a callback env: where the host env is, nothing of the env itself.

    Attributes:
        step: int32 scalar, steps taken since the reset that made this state.
        generation: int32 scalar, which ``reset`` of the host env this state belongs to.
    """

    step: jax.Array
    generation: jax.Array


class _HostCopy:
    """One host vector env of a callback env's pool and where it is (its reset and step)."""

    __slots__ = ("generation", "host", "step_count")

    def __init__(self, host: HostVectorEnv):
        self.host = host
        self.generation = 0
        self.step_count = 0


class CallbackEnvironment(Environment):
    """A host vector env behind jittable ``reset``/``step`` (see the module docstring).

    Args:
        name: ``"namespace::id"``, used in messages.
        host: the adapter; the bridge owns it and closes it in :meth:`close`
            or at interpreter exit.
        host_factory: builds another host vector env like ``host`` (same
            constructor and kwargs). With it, ``jax.vmap`` over seeds works: a
            batch of S seeds steps S host envs (``host`` and S - 1 built on
            first need) in one host call. Without it ``jax.vmap`` raises
            :class:`CallbackVmapError`.

    The ``key`` of ``reset`` seeds the host env (the same key gives the same
    first observations and, for deterministic envs, the same trajectory); the
    ``key`` of ``step`` is unused because the host env keeps its own random
    state. ``params`` must be ``None``.
    """

    use_buffer_callback: bool | None = None
    """None: in-place outputs on the CPU, ``io_callback`` elsewhere; True/False force one."""

    def __init__(
        self,
        name: str,
        host: HostVectorEnv,
        host_factory: Callable[[], HostVectorEnv] | None = None,
    ):
        self.name = name
        self.num_envs = int(host.num_envs)
        self.observation_space = host.observation_space
        self.action_space = host.action_space
        self.capabilities = (
            HOST_CALLBACK
            if host_factory is not None
            else dataclasses.replace(HOST_CALLBACK, vmap_over_seeds=False)
        )
        self._host = host
        self._host_factory = host_factory
        # Copy 0 is ``host``, used by unbatched calls and by seed 0 of a vmapped
        # one; copy s serves seed s. Every reset of any copy takes the next
        # generation, so a state carried to another seed's copy is stale there.
        self._copies = [_HostCopy(host)]
        self._generations = 0
        self._closed = False
        # Calls arrive on XLA's threads; the lock keeps the check-then-step atomic.
        self._lock = threading.Lock()
        self._device_layout: DeviceLayout | None = getattr(host, "device_layout", None)
        host_shape = (
            self.observation_space.shape
            if self._device_layout is None
            else self._device_layout.host_shape
        )
        self._observation_struct = jax.ShapeDtypeStruct(
            (self.num_envs, *host_shape), self.observation_space.dtype
        )
        # Non-daemon worker processes would block the interpreter's exit, so
        # closing is registered with atexit, after multiprocessing's own hook
        # and therefore run before it.
        atexit.register(self.close)

    @property
    def num_host_copies(self) -> int:
        """Host vector envs this env holds: 1, or the largest seed batch vmapped over so far."""
        return len(self._copies)

    def close(self) -> None:
        """Shuts every host env down (worker processes included). Safe to call twice."""
        if self._closed:
            return
        # Dispatch is asynchronous: let callbacks already queued finish first.
        # A failed host call was already raised to its own program's caller.
        # On GPUs JAX keeps the error for the next barrier too (seen on an
        # H200, jax 0.11.2), where it would be re-raised here as if new and
        # leave the host env (and its subprocesses) running.
        with contextlib.suppress(Exception):
            jax.effects_barrier()
        with self._lock:
            self._closed = True
            atexit.unregister(self.close)
            errors = []
            for copy in self._copies:
                try:
                    copy.host.close()
                except Exception as error:  # close the rest before reporting
                    errors.append(error)
            if errors:
                raise errors[0]

    # JAX side ---------------------------------------------------------------

    def _reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, CallbackState]:
        self._check_params(params)
        seed = jax.random.randint(key, (), 0, _MAX_SEED, dtype=jnp.int32)
        scalar = jax.ShapeDtypeStruct((), jnp.int32)
        observation, generation = self._call("reset", (self._observation_struct, scalar), seed)
        return self._to_space(observation), CallbackState(
            step=jnp.zeros((), jnp.int32), generation=generation
        )

    def _step(self, key: jax.Array, state: Any, action: jax.Array, params: Any) -> tuple:
        del key
        self._check_params(params)
        state = self._check_state(state)
        n = self.num_envs
        # Few, packed buffers: each costs the host a conversion (about 0.5 us),
        # which adds up against a 70 us CartPole step.
        outputs = (
            self._observation_struct,
            jax.ShapeDtypeStruct((n,), jnp.float32),
            jax.ShapeDtypeStruct((2 * n + 1,), jnp.int32),  # terminated, truncated, step
            self._observation_struct,
        )
        position = jnp.stack([state.generation, state.step])
        observation, reward, flags, final = self._call("step", outputs, position, action)
        terminated, truncated = flags[:n].astype(jnp.bool_), flags[n : 2 * n].astype(jnp.bool_)
        info = {"final_observation": self._to_space(final)}
        observation = self._to_space(observation)
        next_state = CallbackState(step=flags[2 * n], generation=state.generation)
        return observation, next_state, reward, terminated, truncated, info

    def _call(self, method: str, outputs: tuple, *args: jax.Array) -> Any:
        require_host_backend(f"{self.name}.{method}")
        return self._host_call(method, outputs, None)(*args)

    def _host_call(self, method: str, outputs: tuple, num_copies: int | None) -> Callable[..., Any]:
        """The host call of ``method`` over ``num_copies`` host envs, with its ``jax.vmap`` rule.

        ``None``: the one host env, the arguments and ``outputs`` as the method
        has them. A number (one or more, under ``jax.vmap``): every argument
        and output has a leading axis of ``num_copies``.
        """
        host_function: Callable[..., None]
        if num_copies is None:
            host_function = self._host_reset if method == "reset" else self._host_step
            shapes = outputs
        else:
            host_function = self._host_reset_copies if method == "reset" else self._host_step_copies
            shapes = tuple(
                jax.ShapeDtypeStruct((num_copies, *struct.shape), struct.dtype)
                for struct in outputs
            )
        if self._in_place_outputs():
            callback = buffer_callback(host_function, shapes, has_side_effect=True)
        else:
            callback = _returning_callback(host_function, shapes)

        @custom_vmap
        def call(*args: jax.Array) -> Any:
            return callback(*args)

        @call.def_vmap
        def _over_seeds(axis_size: int, in_batched: Any, *args: Any) -> Any:
            self._check_vmappable(method, in_batched)
            # A vmap of size one still calls the batched form: its outputs keep the axis.
            total = axis_size * (num_copies or 1)
            merged = []
            for arg, batched in zip(args, in_batched, strict=True):
                if not batched:
                    arg = jnp.broadcast_to(arg, (axis_size, *arg.shape))
                # Nested vmaps flatten onto one pool: [axis, copies, ...] -> [axis * copies, ...].
                merged.append(arg if num_copies is None else arg.reshape(total, *arg.shape[2:]))
            self._add_copies(total)
            results = self._host_call(method, outputs, total)(*merged)
            if num_copies is not None:
                results = tuple(
                    result.reshape(axis_size, num_copies, *result.shape[1:]) for result in results
                )
            return tuple(results), tuple(True for _ in results)

        return call

    def _check_vmappable(self, method: str, in_batched: Any) -> None:
        if self._host_factory is None:
            raise CallbackVmapError(
                f"jax.vmap reached {self.name}.{method}, a callback environment built without "
                "a host_factory, so it has one host env, which cannot be vmapped over seeds "
                "(the seeds would share and corrupt it). Pass "
                "CallbackEnvironment(..., host_factory=...) to let each seed build its own, "
                "or run the seeds one after another."
            )
        if method == "step" and not in_batched[0]:
            raise CallbackVmapError(
                f"jax.vmap over {self.name}.step with one env state for every seed: under "
                "vmap each seed steps its own host env, so the state must be batched too "
                "(vmap reset over the seeds' keys and step the states it returns)."
            )

    def _add_copies(self, count: int) -> None:
        """Builds host envs until there are ``count`` (at trace time, before any call runs)."""
        factory = self._host_factory
        if factory is None:  # _check_vmappable refused it already; kept for the type checker
            raise CallbackVmapError(f"{self.name} has no host_factory to build more host envs.")
        with self._lock:
            self._check_open()
            while len(self._copies) < count:
                self._copies.append(_HostCopy(factory()))

    def _to_space(self, observation: jax.Array) -> jax.Array:
        if self._device_layout is None:
            return observation
        return self._device_layout.to_space(observation)

    def _in_place_outputs(self) -> bool:
        """Whether the host can write outputs in place (``buffer_callback``).

        Its buffers are host memory only on the CPU client; on accelerators the
        bridge falls back to an unordered ``io_callback`` (slower, same
        semantics). ``use_buffer_callback`` overrides the choice (tests use it
        to run the fallback on the CPU).
        """
        if self.use_buffer_callback is not None:
            return self.use_buffer_callback
        return jax.default_backend() == "cpu"

    def _check_params(self, params: Any) -> None:
        if params is not None:
            raise ValueError(
                f"{self.name}: callback environments take no env params (got "
                f"{type(params).__name__}); pass the params make() returned (None). "
                "Configure the env through make(..., **kwargs) instead."
            )

    def _check_state(self, state: Any) -> CallbackState:
        if not isinstance(state, CallbackState):
            raise TypeError(
                f"{self.name}.step: expected the CallbackState returned by this env's reset "
                f"or step, got {type(state).__name__}."
            )
        return CallbackState(
            step=jnp.asarray(state.step, jnp.int32),
            generation=jnp.asarray(state.generation, jnp.int32),
        )

    # Host side (runs inside the XLA program) --------------------------------

    def _host_reset(self, ctx: Any, out: tuple, seed: Any) -> None:
        del ctx
        observation_out, generation_out = out
        with self._lock:
            self._check_open()
            np.asarray(observation_out)[...] = self._reset_copy(0, int(np.asarray(seed)))
            np.asarray(generation_out)[...] = self._copies[0].generation

    def _host_reset_copies(self, ctx: Any, out: tuple, seeds: Any) -> None:
        del ctx
        observation_out, generation_out = (np.asarray(buffer) for buffer in out)
        with self._lock:
            self._check_open()
            for index, seed in enumerate(np.asarray(seeds).tolist()):
                observation_out[index] = self._reset_copy(index, seed)
                generation_out[index] = self._copies[index].generation

    def _reset_copy(self, index: int, seed: int) -> np.ndarray:
        copy = self._copies[index]
        # A failing reset leaves no usable state behind: invalidate first.
        self._generations += 1
        copy.generation = self._generations
        copy.step_count = 0
        return self._run_host("reset", copy.host.reset, seed)

    def _host_step(self, ctx: Any, out: tuple, position: Any, action: Any) -> None:
        del ctx
        with self._lock:
            self._check_open()
            generation, step = np.asarray(position).tolist()
            copy = self._copies[0]
            self._check_current(copy, step, generation)
            # The buffer is only valid during this call; host envs may keep a reference.
            result = self._run_host("step", copy.host.step, np.asarray(action).copy())
            copy.step_count += 1
            observation_out, reward_out, flags_out, final_out = out
            observation = np.asarray(observation_out)
            _write_step(
                result,
                copy.step_count,
                observation,
                np.asarray(reward_out),
                np.asarray(flags_out),
                final_out,
            )

    def _host_step_copies(self, ctx: Any, out: tuple, positions: Any, actions: Any) -> None:
        del ctx
        observation_out, reward_out, flags_out, final_out = (np.asarray(buffer) for buffer in out)
        with self._lock:
            self._check_open()
            positions = np.asarray(positions).tolist()
            # Every seed's state is checked before any copy steps, so a stale
            # state leaves every host env where it was.
            for index, (generation, step) in enumerate(positions):
                self._check_current(self._copies[index], step, generation, seed=index)
            actions = np.asarray(actions)
            for index in range(len(positions)):
                copy = self._copies[index]
                result = self._run_host("step", copy.host.step, actions[index].copy())
                copy.step_count += 1
                _write_step(
                    result,
                    copy.step_count,
                    observation_out[index],
                    reward_out[index],
                    flags_out[index],
                    final_out[index],
                )

    def _run_host(self, method: str, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)``, a host env method; an exception it raises is reported as a
        :class:`HostEnvironmentError` caused by it (its traceback shows the env's own
        frames), so that the caller of the jitted program sees it as itself, not as XLA's
        error."""
        try:
            return call(*args)
        except HostEnvironmentError as error:  # an adapter's own report (a worker died)
            raise host_error(error, own_traceback=True) from error.__cause__
        except Exception as error:
            raise host_error(
                HostEnvironmentError(
                    f"{self.name}: the host env's {method} raised {type(error).__name__}: "
                    f"{error} (its traceback is above). The env's state is lost: close it and "
                    "make a new one; a run of `memorax train` continues from its last "
                    "checkpoint with `memorax train --resume RUN_DIR`."
                ),
                own_traceback=True,
            ) from error

    def _check_open(self) -> None:
        if self._closed:
            raise host_error(
                HostEnvironmentError(
                    f"{self.name} was closed; make a new env with memorax.envs.make(...)."
                )
            )

    def _check_current(
        self, copy: _HostCopy, step: int, generation: int, seed: int | None = None
    ) -> None:
        if generation == copy.generation and step == copy.step_count:
            return
        if generation == 0:
            problem = "the env has not been reset by this state's program"
        elif generation != copy.generation:
            problem = (
                f"the host env was reset again after this state was made (state from reset "
                f"#{generation}, host env now at reset #{copy.generation}), for example by "
                "an evaluation that reset the training env"
            )
        else:
            problem = (
                f"this state is at step {step} of its episode batch but the host env is at "
                f"step {copy.step_count}: the same state was stepped twice (callback envs "
                "cannot be forked or rewound) or a newer state was already stepped"
            )
        where = "" if seed is None else f" (seed {seed} of a vmapped batch)"
        raise host_error(
            StaleEnvironmentStateError(
                f"{self.name}{where}: stale environment state: {problem}. A callback env's "
                "state is a handle to one live host env; only the state returned by its "
                "latest reset/step can be stepped. Fix: evaluate on a separate env, "
                "agent.evaluate(key, state, env=eval_env) with eval_env made from the same "
                "id, or call reset (agent.reset_env or agent.init) before stepping again."
            )
        )


def _write_step(
    result: HostStep,
    step_count: int,
    observation: np.ndarray,
    reward: np.ndarray,
    flags: np.ndarray,
    final_out: Any,
) -> None:
    """Writes one host env's step into its output buffers (``final_out``: converted if needed)."""
    n = len(reward)
    observation[...] = result.observation
    reward[...] = result.reward
    flags[:n] = result.terminated
    flags[n : 2 * n] = result.truncated
    flags[2 * n] = step_count
    # Mostly no episode ended and the final observation is the observation:
    # copy the contiguous output instead of converting the host array again.
    final_source = (
        observation if result.final_observation is result.observation else result.final_observation
    )
    np.asarray(final_out)[...] = final_source


def _returning_callback(host_function: Any, outputs: tuple) -> Any:
    """``host_function(ctx, out, *args)`` as an ``io_callback`` returning ``out``.

    Unordered on purpose: the step counter each call returns is the next
    call's input, so data already orders the calls, and ``ordered=True``
    threads a runtime token that one host error leaves failed for the rest of
    the process on GPUs (every later program re-raised the first error, seen
    on an H200 with jax 0.11.2). ``io_callback`` is side-effecting either way,
    so it is never dropped or repeated.
    """

    def returning(*args: np.ndarray) -> tuple[np.ndarray, ...]:
        out = tuple(np.empty(struct.shape, struct.dtype) for struct in outputs)
        host_function(None, out, *args)
        return out

    def call(*args: jax.Array) -> Any:
        return io_callback(returning, outputs, *args, ordered=False)

    return call
