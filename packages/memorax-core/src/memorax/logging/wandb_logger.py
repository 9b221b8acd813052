"""Weights & Biases runs, one per seed, grouped under the run's name.

Each seed becomes a W&B run named ``<name>-seed<k>`` in group ``<name>``, so
the W&B UI can show per-seed curves and their mean. W&B's files go under the
run directory (``RUN_DIR/wandb/``). Without W&B credentials the runs are
written offline (``wandb sync RUN_DIR/wandb/offline-run-*`` uploads them
later), so a run never fails or hangs for want of a login. wandb is imported
only when the logger is created; it is the ``wandb`` extra of memorax-core.
"""

from __future__ import annotations

import json
import netrc
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from memorax.logging.logger import check_metrics, is_missing

__all__ = ["WANDB_RUN_IDS_FILE", "WandbLogger", "default_wandb_mode"]

WANDB_RUN_IDS_FILE = "wandb_run_ids.json"
"""File of a run directory mapping each seed to its W&B run id (used to resume)."""

_MODES = ("online", "offline", "disabled")


def default_wandb_mode() -> str:
    """``$WANDB_MODE`` if set, else ``"online"`` when credentials exist, else ``"offline"``.

    Credentials are ``$WANDB_API_KEY`` or an entry for the W&B host
    (``$WANDB_BASE_URL``, default api.wandb.ai) in the netrc file that
    ``wandb login`` writes (``$NETRC`` or ``~/.netrc``).
    """
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
    try:
        if host and netrc.netrc(path).authenticators(host):
            return "online"
    except (OSError, netrc.NetrcParseError):
        pass
    return "offline"


class WandbLogger:
    """Logs each seed to its own W&B run; step = env steps; NaN values are skipped.

    Args:
        run_dir: the run directory; W&B writes under ``run_dir/wandb/``.
        project: W&B project.
        name: group name and run-name prefix (default: the run directory's name).
        config: hyperparameters recorded with every seed's run (plus ``seed``).
        mode: ``"online"``, ``"offline"`` or ``"disabled"``; default
            :func:`default_wandb_mode` (offline unless logged in).
        entity: W&B entity (user or team); default: W&B's own default.
        resume_step: continue the runs of an interrupted run (same run ids,
            read from ``run_dir/wandb_run_ids.json``). W&B ignores steps at or
            before the last one it has, so re-logged steps are not doubled.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        project: str = "memorax",
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        mode: str | None = None,
        entity: str | None = None,
        resume_step: int | None = None,
    ):
        mode = default_wandb_mode() if mode is None else mode
        if mode not in _MODES:
            raise ValueError(f"WandbLogger: mode must be one of {_MODES}, got {mode!r}.")
        try:
            import wandb
        except ImportError as error:
            raise ImportError(
                'WandbLogger needs wandb: pip install "memorax-core[wandb]"'
            ) from error
        self._wandb = wandb
        self.run_dir = Path(run_dir).resolve()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.mode = mode
        self.project = project
        self.entity = entity
        self.name = name if name is not None else self.run_dir.name
        self.config = dict(config or {})
        self.resume = resume_step is not None
        self._ids_path = self.run_dir / WANDB_RUN_IDS_FILE
        self._ids: dict[int, str] = {}
        if self._ids_path.exists():
            if not self.resume:
                raise FileExistsError(
                    f"WandbLogger: {self._ids_path} exists, so {self.run_dir} already holds W&B "
                    "runs. To continue them pass resume_step=<the restored checkpoint's step>; "
                    "to start a new run choose a new run directory."
                )
            self._ids = {int(seed): run_id for seed, run_id in
                         json.loads(self._ids_path.read_text()).items()}  # fmt: skip
        self._runs: dict[int, Any] = {}
        self._closed = False

    def log(self, step: int, metrics: Mapping[str, Any], seed: int = 0) -> None:
        """Log the finite metrics to seed ``seed``'s run at ``step`` (its run starts lazily)."""
        step, values, seed = check_metrics("WandbLogger", step, metrics, seed)
        if self._closed:
            raise RuntimeError("WandbLogger: log() after close(); create a new logger.")
        run = self._runs.get(seed)
        if run is None:
            run = self._runs[seed] = self._start(seed)
        run.log({name: v for name, v in values.items() if not is_missing(v)}, step=step)

    def close(self) -> None:
        """Finish every seed's run and wait until W&B has written them (idempotent).

        This shuts down W&B's background service for the process
        (``wandb.teardown``): ``run.finish`` can return before an offline
        run's file is complete (seen with several concurrent runs), and only
        the teardown waits for it. Other W&B runs open in the same process are
        finished with it.
        """
        if self._closed:
            return
        for run in self._runs.values():
            run.finish()
        self._runs.clear()
        self._closed = True
        self._wandb.teardown()

    @property
    def runs(self) -> dict[int, Any]:
        """The open ``wandb.Run`` of each seed seen so far."""
        return dict(self._runs)

    def _start(self, seed: int) -> Any:
        resuming = seed in self._ids
        if not resuming:
            self._ids[seed] = uuid.uuid4().hex[:12]
            self._ids_path.write_text(json.dumps({str(k): v for k, v in self._ids.items()}))
        return self._wandb.init(
            project=self.project,
            entity=self.entity,
            group=self.name,
            name=f"{self.name}-seed{seed}",
            id=self._ids[seed],
            resume="allow" if resuming else None,
            dir=str(self.run_dir),
            mode=self.mode,  # type: ignore[arg-type]  # checked against _MODES
            config={**self.config, "seed": seed},
            reinit="create_new",
            # Our own progress output must not end up in (or be mangled by) W&B's console capture.
            settings=self._wandb.Settings(console="off", silent=True),
        )
