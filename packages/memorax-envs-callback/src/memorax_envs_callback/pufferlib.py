"""``pufferlib::<id>``: gymnasium envs vectorized by PufferLib (Serial or Multiprocessing).

The host env is ``pufferlib.vector.make`` over PufferLib's gymnasium
emulation. ``pufferlib::<gymnasium id>`` needs no code from the user; a user
env is passed as ``make("pufferlib::MyEnv", env_creator=fn)`` where
``fn(**kwargs)`` returns a gymnasium env.

PufferLib resets an ended env on the *next* step, returning a reset
observation for an action it ignores. ``SameStepPufferEnv`` (one per
copy, living in the worker process) resets in the same step instead and
sends the ended episode's last observation back through PufferLib's info
channel, so no such transition reaches the stream. Exceptions inside a copy
travel the same way, so their message reaches the user; a worker that dies
outright is noticed while waiting for it.

Backends and small machines. ``backend="Serial"`` (the default) steps every
copy in this process. ``backend="Multiprocessing"`` hands each step to worker
processes through shared memory, and PufferLib's workers busy-wait for work.
Every step is two hand-offs between busy-waiting processes, so as soon as
runnable processes outnumber cores each hand-off waits for a scheduler time
slice: with 2 workers on a 2-core machine the raw vector env ran at about 1%
of Serial's rate. The default ``num_workers`` therefore leaves a core to the
learner (usable physical cores - 1, at least 1). The bridge waits for
workers by spinning when every worker and this process have a core each,
and otherwise by spinning briefly and then sleeping in short naps, which
gives the core back to them.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from memorax.envs import Namespace, install_command
from memorax_envs_callback.bridge import CallbackEnvironment, HostEnvironmentError, HostStep
from memorax_envs_callback.constructor_kwargs import check_creator_kwargs, check_gymnasium_kwargs
from memorax_envs_callback.gymnasium_spaces import convert_space

__all__ = ["NAMESPACE", "PufferHostEnv", "make_pufferlib", "same_step_env_class"]

_BACKENDS = ("Serial", "Multiprocessing")
_FINAL = "memorax_final_observation"
_ERROR = "memorax_error"
_SPIN_SECONDS = 50e-6
_NAP_SECONDS = 20e-6
_LIVENESS_SECONDS = 0.05


def env_ids() -> list[str]:
    """Ids registered with gymnasium (with ``env_creator``, any id names the user's env)."""
    import gymnasium

    return sorted(gymnasium.registry)


def _make_gymnasium(env_id: str, **kwargs: Any) -> Any:
    import gymnasium

    return gymnasium.make(env_id, **kwargs)


@functools.cache
def same_step_env_class() -> type:
    """``SameStepPufferEnv``, built on first use so that importing this module imports no
    PufferLib (which imports torch). Worker processes are forked, so the class needs no pickling.
    """
    from pufferlib.emulation import GymnasiumPufferEnv, emulate

    class SameStepPufferEnv(GymnasiumPufferEnv):
        """PufferLib's gymnasium emulation with same-step auto-reset, for one copy.

        Args:
            env_creator: ``env_creator(**env_kwargs)`` returns a gymnasium env.
            env_kwargs: its keyword arguments.
            envs_per_worker: copies per Multiprocessing worker, ``None`` for Serial.
            buf: PufferLib's shared buffers for this copy.
            seed: PufferLib passes the copy's global index here (the vector env
                is built with ``seed=0``).

        PufferLib seeds copy ``j`` of worker ``w`` with ``seed + w + j`` under
        Multiprocessing and copy ``i`` with ``seed + i`` under Serial, so seeds
        overlap between copies and differ between backends. Each copy recovers
        the base seed and mixes it with its global index instead: copies never
        share a seed and both backends give the same trajectories.
        """

        def __init__(
            self,
            env_creator: Callable[..., Any],
            env_kwargs: dict[str, Any],
            envs_per_worker: int | None = None,
            buf: Any = None,
            seed: int | None = 0,
        ):
            super().__init__(env_creator=env_creator, env_kwargs=env_kwargs, buf=buf, seed=seed)
            self.index = int(seed or 0)
            if envs_per_worker:
                worker, position = divmod(self.index, envs_per_worker)
                self.seed_offset = worker + position
            else:
                self.seed_offset = self.index
            if multiprocessing.parent_process() is not None:
                _exit_with_parent()

        def reset(self, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
            """Resets this copy (seed mixed with the copy's index); infos are reduced to errors."""
            if seed is not None:
                base = int(seed) - self.seed_offset
                seed = int(np.random.SeedSequence([base, self.index]).generate_state(1)[0])
            try:
                observation, _ = super().reset(seed=seed)
            except Exception as error:
                return self.observations, {_ERROR: _describe(error)}
            return observation, {}

        def step(self, action: Any) -> tuple:
            """Steps this copy and, if the episode ended, starts the next one at once."""
            try:
                observation, reward, terminated, truncated, _ = super().step(action)
                if not self.done:  # type: ignore[has-type]  # set by pufferlib's step
                    return observation, reward, terminated, truncated, {}
                final = self.observations.copy()
                first, _ = self.env.reset()
            except Exception as error:
                return self.observations, 0.0, False, False, {_ERROR: _describe(error)}
            if self.is_obs_emulated:
                emulate(self.obs_struct, first)
            else:
                self.observations[:] = first
            # PufferLib resets copies with done set on the next step; the reset already happened.
            self.done = False
            info = {_FINAL: (self.index, final)}
            return self.observations, reward, terminated, truncated, info

    return SameStepPufferEnv


_watching_parent = False


def _exit_with_parent() -> None:
    """In a worker process: exit when the parent dies (PufferLib's workers would poll forever)."""
    global _watching_parent
    if _watching_parent:
        return
    _watching_parent = True
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="memorax-exit-with-parent", daemon=True).start()


def _describe(error: BaseException) -> str:
    trace = "".join(traceback.format_exception(error))
    return f"{type(error).__name__}: {error}\n\nHost traceback:\n{trace}"


class PufferHostEnv:
    """A PufferLib vector env of ``same_step_env_class()`` copies behind the bridge's host protocol.

    Args:
        vecenv: from ``pufferlib.vector.make(same_step_env_class(), ..., seed=0)``.
        env_name: ``"namespace::id"``, for messages.
        observation_space, action_space: the gymnasium spaces of one copy
            before PufferLib's emulation.
    """

    def __init__(self, vecenv: Any, env_name: str, observation_space: Any, action_space: Any):
        self.vecenv = vecenv
        self.env_name = env_name
        self.num_envs = vecenv.num_envs
        self.observation_space = convert_space(observation_space, env_name, "observation")
        self.action_space = convert_space(action_space, env_name, "action")
        self._observation_shape = (self.num_envs, *self.observation_space.shape)
        self._processes = list(getattr(vecenv, "processes", ()))
        # Serial keeps every copy in this process (one agent each: gymnasium emulation).
        self._copies = [] if self._processes else list(vecenv.envs)
        if self._copies:
            self._observations = vecenv.observations.reshape(self._observation_shape)
        # With a core for every worker and one for this process, waiting by
        # spinning costs nothing and wakes at once; otherwise spinning would
        # take the core a worker needs, so the wait naps after a short spin.
        self._nap_while_waiting = len(self._processes) + 1 > _usable_cores()
        # The bridge validates actions; PufferLib's one-off check rejects Box
        # actions outside the bounds, which gymnasium envs clip themselves.
        vecenv.initialized = True

    def reset(self, seed: int) -> np.ndarray:
        """Resets every copy from ``seed``."""
        self.vecenv.async_reset(seed)
        observation, _, _, _, infos = self._receive()
        self._raise_errors(infos)
        return observation

    def step(self, action: np.ndarray) -> HostStep:
        """Steps every copy; ended copies are already reset."""
        if self._copies:
            observation, reward, terminated, truncated, infos = self._step_in_process(action)
        else:
            self.vecenv.send(action)
            observation, reward, terminated, truncated, infos = self._receive()
        final = observation
        # Infos are rare (an ended episode, an error), so this loop mostly does nothing.
        for info in infos:
            if _ERROR in info:
                self._raise_errors(infos)
            if _FINAL in info:
                if final is observation:
                    final = observation.copy()
                index, last = info[_FINAL]
                final[index] = last.reshape(final.shape[1:])
        return HostStep(observation, reward, terminated, truncated, final)

    def _step_in_process(self, action: np.ndarray) -> tuple:
        """Serial: steps each copy directly, as PufferLib's ``send`` would.

        Serial's ``send``/``recv`` add about 4 us per 8-copy step of
        bookkeeping for its own API (flag checks, info averaging, resetting
        copies that ended, which same-step copies never leave ended); the
        copies still write into the vector env's buffers.
        """
        infos = []
        for index, copy in enumerate(self._copies):
            info = copy.step(action[index : index + 1])[4]
            if info:
                infos.append(info)
        vecenv = self.vecenv
        return self._observations, vecenv.rewards, vecenv.terminals, vecenv.truncations, infos

    def _receive(self) -> tuple:
        if self._processes:
            self._wait_for_workers()
        observation, reward, terminated, truncated, _, infos, _, _ = self.vecenv.recv()
        if self._processes:
            # recv has read every worker's info message but leaves their semaphores at
            # INFO; the next async_reset would wait on the pipe for that message again.
            from pufferlib.vector import INFO, MAIN

            semaphores = self.vecenv.buf["semaphores"]
            semaphores[semaphores == INFO] = MAIN
        if observation.shape != self._observation_shape:
            observation = observation.reshape(self._observation_shape)
        return observation, reward, terminated, truncated, infos

    def _raise_errors(self, infos: list) -> None:
        for info in infos:
            if _ERROR in info:
                raise HostEnvironmentError(
                    f"{self.env_name}: the environment raised {info[_ERROR]}"
                )

    def _wait_for_workers(self) -> None:
        """Waits for every worker without hanging on a dead one (PufferLib's recv would)."""
        if not self._processes:
            return
        from pufferlib.vector import MAIN

        semaphores = self.vecenv.buf["semaphores"]
        start = time.perf_counter()
        next_check = start + _LIVENESS_SECONDS
        while not np.all(semaphores >= MAIN):
            now = time.perf_counter()
            if self._nap_while_waiting and now - start > _SPIN_SECONDS:
                time.sleep(_NAP_SECONDS)
            if now > next_check:
                next_check = now + _LIVENESS_SECONDS
                for process in self._processes:
                    if not process.is_alive():
                        raise HostEnvironmentError(
                            f"{self.env_name}: PufferLib worker process {process.pid} died "
                            f"(exit code {process.exitcode}). Close this env and make a new one."
                        )

    def close(self) -> None:
        """Stops the worker processes and closes every copy."""
        self.vecenv.close()
        for process in self._processes:
            process.join(timeout=5)


def _usable_cores() -> int:
    """Physical cores this process may run on (at most its CPU affinity allows).

    A container's cpuset or ``taskset`` can allow far fewer cores than the
    machine has, and PufferLib's spinning workers collapse when they outnumber
    the cores (seen: 16 cores, 2 allowed, about 1% of Serial's rate with
    workers counted from the machine).
    """
    import psutil

    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    allowed = allowed or os.cpu_count() or 1
    return min(psutil.cpu_count(logical=False) or allowed, allowed)


def _default_workers(num_envs: int) -> int:
    workers = max(1, min(num_envs, _usable_cores() - 1))
    while num_envs % workers:
        workers -= 1
    return workers


def make_pufferlib(
    env_id: str,
    num_envs: int,
    *,
    backend: str = "Serial",
    num_workers: int | None = None,
    env_creator: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> tuple[CallbackEnvironment, None]:
    """Builds ``num_envs`` copies behind PufferLib's vector env and the callback bridge.

    Args:
        env_id: a gymnasium id (``"CartPole-v1"``), or any name when ``env_creator`` is given.
        num_envs: copies stepped together.
        backend: ``"Serial"`` (this process) or ``"Multiprocessing"`` (worker processes).
        num_workers: Multiprocessing workers; must divide ``num_envs``. Defaults
            to the physical cores this process may use (its CPU affinity) minus 1,
            at least 1, reduced to a divisor of ``num_envs``.
        env_creator: ``env_creator(**kwargs)`` returns a gymnasium env; defaults
            to ``gymnasium.make(env_id, **kwargs)``.
        **kwargs: passed to the env creator, e.g. ``max_episode_steps``.

    Returns:
        ``(env, None)``: callback envs have no env params.
    """
    import pufferlib
    import pufferlib.vector

    name = f"pufferlib::{env_id}"
    if backend not in _BACKENDS:
        raise ValueError(f"make({name!r}): backend must be one of {_BACKENDS}, got {backend!r}.")
    if env_creator is None:
        check_gymnasium_kwargs(name, env_id, kwargs)
    else:
        check_creator_kwargs(name, env_creator, kwargs)
    creator = env_creator or functools.partial(_make_gymnasium, env_id)
    probe = creator(**kwargs)
    observation_space, action_space = probe.observation_space, probe.action_space
    probe.close()
    options: dict[str, Any] = {}
    envs_per_worker = None
    if backend == "Multiprocessing":
        workers = _default_workers(num_envs) if num_workers is None else num_workers
        if workers < 1 or num_envs % workers:
            raise ValueError(
                f"make({name!r}): num_workers={workers} must be positive and divide "
                f"num_envs={num_envs}."
            )
        options = {"num_workers": workers, "overwork": True}
        envs_per_worker = num_envs // workers
    elif num_workers is not None:
        raise ValueError(f"make({name!r}): num_workers applies only to backend='Multiprocessing'.")

    def build() -> PufferHostEnv:
        vecenv = pufferlib.vector.make(
            same_step_env_class(),
            env_kwargs={
                "env_creator": creator,
                "env_kwargs": kwargs,
                "envs_per_worker": envs_per_worker,
            },
            backend=getattr(pufferlib.vector, backend),
            num_envs=num_envs,
            seed=0,
            **options,
        )
        try:
            return PufferHostEnv(vecenv, name, observation_space, action_space)
        except BaseException:
            vecenv.close()
            raise

    try:
        host = build()
    except pufferlib.APIUsageError as error:
        raise ValueError(f"make({name!r}): {error}") from error
    # Under jax.vmap each seed gets its own vector env (and workers), built the same way.
    return CallbackEnvironment(name, host, host_factory=build), None


NAMESPACE = Namespace(
    name="pufferlib",
    factory=make_pufferlib,
    env_ids=env_ids,
    requires=("pufferlib", "gymnasium"),
    install=install_command("memorax-envs-callback", "pufferlib"),
    open_ended=True,
    contract_ids=("CartPole-v1", "Pendulum-v1"),
)
