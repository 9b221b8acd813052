"""Save and restore training state with orbax under ``RUN_DIR/checkpoints/``.

Any pytree of arrays is a checkpointable state: an agent state (parameters,
optimiser states, env state, counters, metrics), a dict that adds the
training loop's own PRNG key and step, a ``jax.vmap``-ed state with a leading
seed axis. Typed PRNG keys (``jax.random.key``) are stored as their key data
plus the name of their implementation and come back as typed keys. Values
come back bit for bit, with the dtypes and (for ``jax.Array`` targets)
shardings of the target.

Restoring needs a *target*: a pytree of the same structure (e.g. a fresh
``agent.init(key)``, or ``jax.eval_shape`` of it) whose leaves give shapes,
dtypes and placement. A target that does not match the checkpoint is refused
with the paths that differ, before anything is read.

Checkpoints are identified by an integer step (usually env steps or
updates). Saves are synchronous: when ``save`` returns the checkpoint is
complete on disk, so a run interrupted right after it can resume from it.

A process killed while it writes (or deletes) a checkpoint leaves a step
folder without the commit file orbax writes last (``commit_success.txt``).
Such a folder is not a checkpoint: :meth:`Checkpointer.steps` and everything
that reads skip it, and saving that step again replaces it. A checkpoint
whose files were damaged after writing (truncated, overwritten) is refused
with :class:`DamagedCheckpointError`, which names the checkpoints still intact.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = [
    "CHECKPOINT_DIR",
    "Checkpointer",
    "DamagedCheckpointError",
    "latest_step",
    "restore",
    "restore_metadata",
    "save",
]

CHECKPOINT_DIR = "checkpoints"
"""Folder of a run directory that holds one sub-folder per saved step."""

_FORMAT = 1
# Written by orbax into a step folder after everything else: the folder is a complete checkpoint.
_COMMIT_FILE = "commit_success.txt"


class DamagedCheckpointError(RuntimeError):
    """A complete checkpoint's files cannot be read back (truncated, overwritten, removed)."""


class Checkpointer:
    """The checkpoints of one run directory; keeps the ``max_to_keep`` most recent.

    Use one across a training run (periodic saves reuse it) and ``close`` it
    at the end, or use it as a context manager.

    Args:
        run_dir: the run directory; checkpoints go to ``run_dir/checkpoints/<step>/``.
        max_to_keep: how many of the most recent checkpoints survive a save
            (None: all).
    """

    def __init__(self, run_dir: str | os.PathLike, max_to_keep: int | None = 3):
        if max_to_keep is not None and (not isinstance(max_to_keep, int) or max_to_keep < 1):
            raise ValueError(
                f"Checkpointer: max_to_keep must be a positive integer or None, got "
                f"{max_to_keep!r}."
            )
        # orbax is imported here, not at module import: it is slow to import and
        # `import memorax` should stay fast for users who never checkpoint.
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.run_dir = Path(run_dir).resolve()
        self.directory = self.run_dir / CHECKPOINT_DIR
        self.max_to_keep = max_to_keep
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def steps(self) -> list[int]:
        """The completely saved steps, ascending (a write cut short is not one)."""
        return sorted(step for step in self._manager.all_steps() if self._complete(step))

    def _complete(self, step: int) -> bool:
        return (self.directory / str(step) / _COMMIT_FILE).is_file()

    def latest_step(self) -> int | None:
        """The most recent saved step, or None when there is none."""
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, state: Any, metadata: Mapping[str, Any] | None = None) -> None:
        """Write ``state`` (any pytree of arrays) and JSON ``metadata`` as checkpoint ``step``.

        Raises:
            FileExistsError: ``step`` is already saved (check :meth:`latest_step`).
            TypeError: a leaf is not an array / number, or ``metadata`` is not JSON.
        """
        step = _check_step("Checkpointer.save", step)
        if step in self.steps():
            raise FileExistsError(
                f"Checkpointer.save: step {step} is already saved in {self.directory}; "
                "checkpoints are identified by step, save each step once."
            )
        user = dict(metadata or {})
        try:
            json.dumps(user, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Checkpointer.save: metadata must be JSON-serialisable (str, numbers, lists, "
                f"dicts, no NaN): {error}"
            ) from error
        arrays, leaves = _encode(state, "Checkpointer.save")
        leftover = self.directory / str(step)
        if leftover.exists():
            # A write of this step that a killed process left unfinished: replace it.
            shutil.rmtree(leftover)
            self._manager.reload()
        ocp = self._ocp
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(arrays),
                metadata=ocp.args.JsonSave({"format": _FORMAT, "leaves": leaves, "user": user}),
            ),
        )
        self._manager.wait_until_finished()

    def metadata(self, step: int | None = None) -> dict[str, Any]:
        """The ``metadata`` dict saved with ``step`` (default: the latest)."""
        return self._read_metadata(self._resolve_step(step))["user"]

    def restore(self, target: Any, step: int | None = None) -> Any:
        """Checkpoint ``step`` (default: the latest) in the structure of ``target``.

        Args:
            target: a pytree like the saved state; its leaves (arrays or
                ``jax.ShapeDtypeStruct``) fix shapes, dtypes and shardings.
            step: which checkpoint.

        Returns:
            A pytree like ``target`` holding the saved values.

        Raises:
            FileNotFoundError: no checkpoint (or not that step) in this run directory.
            ValueError: ``target`` does not match the checkpoint (names the paths).
        """
        step = self._resolve_step(step)
        saved = self._read_metadata(step)["leaves"]
        paths_and_leaves, treedef = jax.tree_util.tree_flatten_with_path(target)
        _check_target(saved, paths_and_leaves, self.directory / str(step))
        abstract = {
            _leaf_name(i): _abstract(entry, leaf)
            for i, (entry, (_, leaf)) in enumerate(zip(saved, paths_and_leaves, strict=True))
        }
        stored = {name: value for name, value in abstract.items() if np.prod(value.shape)}
        ocp = self._ocp
        restored = {}
        if stored:
            try:
                restored = self._manager.restore(
                    step, args=ocp.args.Composite(state=ocp.args.StandardRestore(stored))
                )["state"]
            except Exception as error:  # orbax and tensorstore raise several types
                raise self._damaged(step, error) from error
        leaves = [
            _decode(restored.get(_leaf_name(i), _empty(abstract[_leaf_name(i)])), entry, leaf)
            for i, (entry, (_, leaf)) in enumerate(zip(saved, paths_and_leaves, strict=True))
        ]
        return jax.tree_util.tree_unflatten(treedef, leaves)

    def close(self) -> None:
        """Wait for pending work and release orbax's resources."""
        self._manager.close()

    def _resolve_step(self, step: int | None) -> int:
        steps = self.steps()
        if not steps:
            raise FileNotFoundError(
                f"No checkpoints in {self.directory}; was the run saved with checkpoints "
                "(memorax.checkpoints.save / memorax train)?"
            )
        if step is None:
            return steps[-1]
        step = _check_step("Checkpointer.restore", step)
        if step not in steps:
            raise FileNotFoundError(
                f"No checkpoint for step {step} in {self.directory}; saved steps: {steps}."
            )
        return step

    def _damaged(self, step: int, error: Exception) -> DamagedCheckpointError:
        others = [s for s in self.steps() if s != step]
        if others:
            fallback = (
                f"The other complete checkpoints are steps {others}: to continue from the "
                f"latest of them, delete {self.directory / str(step)}."
            )
        else:
            fallback = "No other checkpoint is left in this run directory."
        first_line = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        return DamagedCheckpointError(
            f"Checkpoint {self.directory / str(step)} is damaged: it was written completely "
            f"but cannot be read back ({type(error).__name__}: {first_line}). Its files were "
            f"truncated or changed after writing. {fallback}"
        )

    def _read_metadata(self, step: int) -> dict[str, Any]:
        ocp = self._ocp
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore())
            )
        except Exception as error:
            raise self._damaged(step, error) from error
        metadata = restored["metadata"]
        if not isinstance(metadata, dict) or metadata.get("format") != _FORMAT:
            raise ValueError(
                f"{self.directory / str(step)} was not written by memorax.checkpoints "
                f"(format {_FORMAT})."
            )
        return metadata


def save(
    run_dir: str | os.PathLike,
    step: int,
    state: Any,
    metadata: Mapping[str, Any] | None = None,
    max_to_keep: int | None = 3,
) -> None:
    """Save ``state`` as checkpoint ``step`` of ``run_dir`` (see :meth:`Checkpointer.save`)."""
    with Checkpointer(run_dir, max_to_keep) as checkpointer:
        checkpointer.save(step, state, metadata)


def latest_step(run_dir: str | os.PathLike) -> int | None:
    """The most recent checkpoint step of ``run_dir``, or None (also for a missing directory)."""
    if not (Path(run_dir) / CHECKPOINT_DIR).is_dir():
        return None
    with Checkpointer(run_dir, None) as checkpointer:
        return checkpointer.latest_step()


def restore(run_dir: str | os.PathLike, target: Any, step: int | None = None) -> Any:
    """Restore checkpoint ``step`` (default: latest) of ``run_dir`` like ``target``.

    See :meth:`Checkpointer.restore`.
    """
    _require_checkpoints(run_dir)
    with Checkpointer(run_dir, None) as checkpointer:
        return checkpointer.restore(target, step)


def restore_metadata(run_dir: str | os.PathLike, step: int | None = None) -> dict[str, Any]:
    """The metadata saved with checkpoint ``step`` (default: latest) of ``run_dir``."""
    _require_checkpoints(run_dir)
    with Checkpointer(run_dir, None) as checkpointer:
        return checkpointer.metadata(step)


def _require_checkpoints(run_dir: str | os.PathLike) -> None:
    # Reading must not create folders in a mistyped run directory.
    if not (Path(run_dir) / CHECKPOINT_DIR).is_dir():
        raise FileNotFoundError(
            f"{run_dir} has no {CHECKPOINT_DIR}/ folder; pass the run directory of a run "
            "that saved checkpoints."
        )


def _encode(tree: Any, owner: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Flat ``{name: array}`` to store plus a description of each leaf."""
    arrays: dict[str, Any] = {}
    leaves: list[dict[str, Any]] = []
    for i, (path, leaf) in enumerate(jax.tree_util.tree_flatten_with_path(tree)[0]):
        key_impl = None
        if _is_key(leaf):
            key_impl = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        elif not isinstance(leaf, jax.Array):
            leaf = np.asarray(leaf)
        if np.dtype(leaf.dtype).kind not in "biufc":
            raise TypeError(
                f"{owner}: leaf {jax.tree_util.keystr(path)} is {leaf!r} ({leaf.dtype}); "
                "checkpoints hold arrays and numbers only."
            )
        # orbax refuses zero-size arrays; their shape and dtype below are all there is to keep.
        if leaf.size:
            arrays[_leaf_name(i)] = leaf
        leaves.append({
            "path": jax.tree_util.keystr(path),
            "shape": list(leaf.shape),
            "dtype": np.dtype(leaf.dtype).name,
            "key_impl": key_impl,
        })  # fmt: skip
    return arrays, leaves


def _check_target(saved: list[dict[str, Any]], target: list[tuple[Any, Any]], where: Path) -> None:
    """Refuse a target whose paths, shapes, dtypes or key types differ from the checkpoint."""
    problems = []
    saved_paths = [entry["path"] for entry in saved]
    target_paths = [jax.tree_util.keystr(path) for path, _ in target]
    if saved_paths != target_paths:
        missing = [p for p in saved_paths if p not in target_paths]
        extra = [p for p in target_paths if p not in saved_paths]
        problems.append(
            f"structure differs: in the checkpoint only {missing[:5]}, in the target only "
            f"{extra[:5]}"
            if missing or extra
            else "the same leaves in a different order"
        )
    else:
        for entry, (path, leaf) in zip(saved, target, strict=True):
            shape, dtype, key_impl = _describe(leaf)
            expected = (tuple(entry["shape"]), entry["dtype"], entry["key_impl"])
            if (shape, dtype, key_impl) != expected:
                problems.append(
                    f"{jax.tree_util.keystr(path)}: checkpoint has shape {expected[0]} dtype "
                    f"{expected[1]} key {expected[2]}, target has shape {shape} dtype {dtype} "
                    f"key {key_impl}"
                )
    if problems:
        shown = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
        raise ValueError(
            f"The restore target does not match the checkpoint {where}: {shown}. Build the "
            "target the way the saved state was built (same agent config, networks, number "
            "of seeds). A checkpoint written by an older Memorax whose agent state had "
            "another layout (see the changelog in docs/logging.md) is refused the same way: "
            "continue it with the version that wrote it, or start a new run."
        )


def _describe(leaf: Any) -> tuple[tuple[int, ...], str, str | None]:
    """Shape, dtype name and key implementation of a target leaf, as stored."""
    if _is_key(leaf):
        # Traced so that abstract keys (jax.ShapeDtypeStruct) are described too.
        impl: list[str] = []

        def key_data(key: jax.Array) -> jax.Array:
            impl.append(str(jax.random.key_impl(key)))
            return jax.random.key_data(key)

        data = jax.eval_shape(key_data, leaf)
        return tuple(data.shape), np.dtype(data.dtype).name, impl[0]
    if not isinstance(leaf, jax.Array | jax.ShapeDtypeStruct):
        leaf = np.asarray(leaf)
    return tuple(leaf.shape), np.dtype(leaf.dtype).name, None


def _empty(abstract: Any) -> Any:
    """A zero-size leaf, which orbax does not store, rebuilt from its description."""
    if isinstance(abstract, jax.ShapeDtypeStruct):
        return jax.device_put(np.zeros(abstract.shape, abstract.dtype), abstract.sharding)
    return abstract


def _decode(value: Any, entry: dict[str, Any], target: Any) -> Any:
    """Turn a restored array back into the kind of leaf ``target`` is."""
    if entry["key_impl"] is not None:
        return jax.random.wrap_key_data(value, impl=entry["key_impl"])
    if isinstance(target, jax.Array | jax.ShapeDtypeStruct):
        return value
    if isinstance(target, bool | int | float | complex):
        return type(target)(np.asarray(value).item())
    if isinstance(target, np.generic):
        return np.asarray(value).astype(target.dtype)[()]
    return np.asarray(value)


def _is_key(leaf: Any) -> bool:
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _abstract(entry: dict[str, Any], target: Any) -> Any:
    """What orbax restores a leaf as: a device array where the target has one, else numpy.

    Numpy and Python leaves go through numpy so that 64-bit values survive
    even when JAX runs in 32-bit mode.
    """
    shape, dtype = tuple(entry["shape"]), np.dtype(entry["dtype"])
    if isinstance(target, jax.Array | jax.ShapeDtypeStruct) or entry["key_impl"] is not None:
        sharding = getattr(target, "sharding", None)
        if sharding is None:
            sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)
    return np.zeros(shape, dtype)


def _leaf_name(index: int) -> str:
    return f"leaf_{index:05d}"


def _check_step(owner: str, step: Any) -> int:
    array = np.asarray(step)
    if array.shape != () or array.dtype.kind not in "iu" or int(array) < 0:
        raise ValueError(f"{owner}: step must be a non-negative integer, got {step!r}.")
    return int(array)
