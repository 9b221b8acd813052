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

``jax.vmap`` cannot give independent copies of one host process, so a
``custom_vmap`` rule refuses it with :class:`CallbackVmapError` before any
callback runs.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
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


class CallbackEnvironment(Environment):
    """A host vector env behind jittable ``reset``/``step`` (see the module docstring).

    Args:
        name: ``"namespace::id"``, used in messages.
        host: the adapter; the bridge owns it and closes it in :meth:`close`
            or at interpreter exit.

    The ``key`` of ``reset`` seeds the host env (the same key gives the same
    first observations and, for deterministic envs, the same trajectory); the
    ``key`` of ``step`` is unused because the host env keeps its own random
    state. ``params`` must be ``None``.
    """

    use_buffer_callback: bool | None = None
    """None: in-place outputs on the CPU, ``io_callback`` elsewhere; True/False force one."""

    def __init__(self, name: str, host: HostVectorEnv):
        self.name = name
        self.num_envs = int(host.num_envs)
        self.observation_space = host.observation_space
        self.action_space = host.action_space
        self.capabilities = HOST_CALLBACK
        self._host = host
        self._generation = 0
        self._step_count = 0
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

    def close(self) -> None:
        """Shuts the host env down (worker processes included). Safe to call twice."""
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
            self._host.close()

    # JAX side ---------------------------------------------------------------

    def _reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, CallbackState]:
        self._check_params(params)
        seed = jax.random.randint(key, (), 0, _MAX_SEED, dtype=jnp.int32)
        scalar = jax.ShapeDtypeStruct((), jnp.int32)
        observation, generation = self._call(
            "reset", self._host_reset, (self._observation_struct, scalar), seed
        )
        return self._to_space(observation), CallbackState(
            step=jnp.zeros((), jnp.int32), generation=generation
        )

    def _step(self, key: jax.Array, state: Any, action: jax.Array, params: Any) -> tuple:
        del key
        self._check_params(params)
        state = self._check_state(state)
        n = self.num_envs
        # Few, packed buffers: each costs the host a conversion (about 1 to 2 us),
        # which adds up against a 100 us CartPole step.
        outputs = (
            self._observation_struct,
            jax.ShapeDtypeStruct((n,), jnp.float32),
            jax.ShapeDtypeStruct((2 * n + 1,), jnp.int32),  # terminated, truncated, step
            self._observation_struct,
        )
        position = jnp.stack([state.generation, state.step])
        observation, reward, flags, final = self._call(
            "step", self._host_step, outputs, position, action
        )
        terminated, truncated = flags[:n].astype(jnp.bool_), flags[n : 2 * n].astype(jnp.bool_)
        info = {"final_observation": self._to_space(final)}
        observation = self._to_space(observation)
        next_state = CallbackState(step=flags[2 * n], generation=state.generation)
        return observation, next_state, reward, terminated, truncated, info

    def _call(self, method: str, host_function: Any, outputs: tuple, *args: jax.Array) -> Any:
        require_host_backend(f"{self.name}.{method}")
        if self._in_place_outputs():
            callback = buffer_callback(host_function, outputs, has_side_effect=True)
        else:
            callback = _returning_callback(host_function, outputs)
        env_name = self.name

        @custom_vmap
        def call(*args: jax.Array) -> Any:
            return callback(*args)

        @call.def_vmap
        def _refuse(axis_size: int, in_batched: Any, *args: Any) -> Any:
            raise CallbackVmapError(
                f"jax.vmap reached {env_name}.{method}, a callback environment. Its "
                f"{self.num_envs} copies run in one host process, which cannot be vmapped "
                "over seeds: a vmapped init/train/evaluate would share (and corrupt) that "
                "one environment. To run several seeds, use a JAX-native env "
                "(gymnax/navix/craftax) and vmap over seeds, or run the seeds one after "
                "another. To step more copies at once, raise make(..., num_envs=...)."
            )

        return call(*args)

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
            # A failing reset leaves no usable state behind: invalidate first.
            self._generation += 1
            self._step_count = 0
            observation = self._host.reset(int(np.asarray(seed)))
            np.asarray(observation_out)[...] = observation
            np.asarray(generation_out)[...] = self._generation

    def _host_step(self, ctx: Any, out: tuple, position: Any, action: Any) -> None:
        del ctx
        with self._lock:
            self._check_open()
            generation, step = np.asarray(position).tolist()
            self._check_current(step, generation)
            # The buffer is only valid during this call; host envs may keep a reference.
            result = self._host.step(np.asarray(action).copy())
            self._step_count += 1
            observation_out, reward_out, flags_out, final_out = out
            observation = np.asarray(observation_out)
            observation[...] = result.observation
            np.asarray(reward_out)[...] = result.reward
            flags, n = np.asarray(flags_out), self.num_envs
            flags[:n] = result.terminated
            flags[n : 2 * n] = result.truncated
            flags[2 * n] = self._step_count
            # Mostly no episode ended and the final observation is the observation:
            # copy the contiguous output instead of converting the host array again.
            final_source = (
                observation
                if result.final_observation is result.observation
                else result.final_observation
            )
            np.asarray(final_out)[...] = final_source

    def _check_open(self) -> None:
        if self._closed:
            raise host_error(
                HostEnvironmentError(
                    f"{self.name} was closed; make a new env with memorax.envs.make(...)."
                )
            )

    def _check_current(self, step: int, generation: int) -> None:
        if generation == self._generation and step == self._step_count:
            return
        if generation == 0:
            problem = "the env has not been reset by this state's program"
        elif generation != self._generation:
            problem = (
                f"the host env was reset again after this state was made (state from reset "
                f"#{generation}, host env now at reset #{self._generation}), for example by "
                "an evaluation that reset the training env"
            )
        else:
            problem = (
                f"this state is at step {step} of its episode batch but the host env is at "
                f"step {self._step_count}: the same state was stepped twice (callback envs "
                "cannot be forked or rewound) or a newer state was already stepped"
            )
        raise host_error(
            StaleEnvironmentStateError(
                f"{self.name}: stale environment state: {problem}. A callback env's state is "
                "a handle to one live host env; only the state returned by its latest "
                "reset/step can be stepped. Fix: evaluate on a separate env, "
                "agent.evaluate(key, state, env=eval_env) with eval_env made from the same "
                "id, or call reset (agent.reset_env or agent.init) before stepping again."
            )
        )


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
