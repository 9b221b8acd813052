"""Checkpoints of training state (orbax, under ``RUN_DIR/checkpoints/``) and graceful Ctrl-C.

``save(run_dir, step, state)`` / ``restore(run_dir, target)`` store and load any
pytree of arrays bit for bit, typed PRNG keys included; :class:`Checkpointer`
keeps one orbax manager open across a run's periodic saves.
:class:`GracefulInterrupt` turns Ctrl-C into a flag the training loop checks
so it can save before exiting.
"""

from memorax.checkpoints.interrupt import GracefulInterrupt
from memorax.checkpoints.store import (
    CHECKPOINT_DIR,
    Checkpointer,
    DamagedCheckpointError,
    latest_step,
    restore,
    restore_metadata,
    save,
)

__all__ = [
    "CHECKPOINT_DIR",
    "Checkpointer",
    "DamagedCheckpointError",
    "GracefulInterrupt",
    "latest_step",
    "restore",
    "restore_metadata",
    "save",
]
