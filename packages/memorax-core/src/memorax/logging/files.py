"""Metrics files in a run directory: ``metrics.csv`` or ``metrics.jsonl``, and reading them back.

Both formats hold one row per ``log`` call: ``step``, ``seed``, then the
metrics. A seed's series is its rows. Missing values (NaN) are an empty CSV
cell or a JSON ``null``. Rows are flushed as they are written, so a run that
is killed keeps everything logged so far.

Resuming a run: pass ``resume_step`` (the step of the restored checkpoint);
rows logged after it by the interrupted run are dropped before new ones are
appended, so the file holds each step once.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from memorax.logging.logger import check_metrics, is_missing

__all__ = ["CSV_FILE", "JSONL_FILE", "CSVLogger", "JSONLLogger", "metrics_file", "read_metrics"]

CSV_FILE = "metrics.csv"
"""Name of the CSV metrics file inside a run directory."""
JSONL_FILE = "metrics.jsonl"
"""Name of the JSON-lines metrics file inside a run directory."""

_INDEX = ("step", "seed")


class _FileLogger:
    """Shared open / resume / close logic of the two file formats."""

    file_name: str

    def __init__(
        self,
        run_dir: str | os.PathLike,
        resume_step: int | None = None,
        resume_seed: int | None = None,
    ):
        name = type(self).__name__
        self.path = Path(run_dir) / self.file_name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._columns: list[str] | None = None
        if self.path.exists():
            if resume_step is None:
                raise FileExistsError(
                    f"{name}: {self.path} already exists. To continue that run pass "
                    "resume_step=<the restored checkpoint's step> (rows logged after it are "
                    "dropped); to start a new run choose a new run directory."
                )
            kept = [
                row
                for row in _read_rows(self.path)
                if _kept_on_resume(row, resume_step, resume_seed)
            ]
            self._columns = _header_metrics(self.path)
            # Rewrite through a temporary file so a crash here cannot lose the kept rows.
            temporary = self.path.with_name(self.path.name + ".tmp")
            with temporary.open("w", newline="") as file:
                self._write_existing(file, kept)
            os.replace(temporary, self.path)
        self._file: TextIO | None = self.path.open("a", newline="")

    def log(self, step: int, metrics: Mapping[str, Any], seed: int = 0) -> None:
        """Append one row ``(step, seed, *metrics)`` and flush it."""
        name = type(self).__name__
        step, values, seed = check_metrics(name, step, metrics, seed)
        if self._file is None:
            raise RuntimeError(f"{name}: log() after close(); create a new logger.")
        clash = set(_INDEX) & set(values)
        if clash:
            raise ValueError(f"{name}: {sorted(clash)} are written by the logger itself; "
                             "rename those metrics.")  # fmt: skip
        self._write(self._file, {"step": step, "seed": seed, **values})
        self._file.flush()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write_existing(self, file: TextIO, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _write(self, file: TextIO, row: dict[str, Any]) -> None:
        raise NotImplementedError


class CSVLogger(_FileLogger):
    """Writes ``RUN_DIR/metrics.csv``: columns ``step, seed`` then the metric names.

    The metric columns are fixed by the first row (sorted by name); a later
    row may leave some out (empty cells) but may not add new ones — use
    :class:`JSONLLogger` when the set of metrics changes during a run.

    Args:
        run_dir: the run directory (created if needed).
        resume_step: continue an existing file, dropping rows after this step.
        resume_seed: for seeds trained one after another: rows of earlier seeds
            are kept whole, rows of later seeds dropped, and ``resume_step``
            applies to this seed only (None: it applies to every seed).
    """

    file_name = CSV_FILE

    def _write_existing(self, file: TextIO, rows: list[dict[str, Any]]) -> None:
        if self._columns is not None:
            writer = csv.writer(file)
            writer.writerow([*_INDEX, *self._columns])
            for row in rows:
                writer.writerow(self._cells(row))

    def _write(self, file: TextIO, row: dict[str, Any]) -> None:
        writer = csv.writer(file)
        if self._columns is None:
            self._columns = sorted(set(row) - set(_INDEX))
            writer.writerow([*_INDEX, *self._columns])
        unknown = sorted(set(row) - set(_INDEX) - set(self._columns))
        if unknown:
            raise ValueError(
                f"CSVLogger: metrics {unknown} were not in the first logged row, whose names "
                f"fixed the columns of {self.path} ({self._columns}). Log every metric from the "
                "first row on, or use JSONLLogger when the set of metrics changes."
            )
        writer.writerow(self._cells(row))

    def _cells(self, row: Mapping[str, Any]) -> list[Any]:
        columns = [*_INDEX, *(self._columns or [])]
        return [_cell(row.get(column, math.nan)) for column in columns]


class JSONLLogger(_FileLogger):
    """Writes ``RUN_DIR/metrics.jsonl``: one JSON object ``{"step", "seed", ...}`` per line.

    Any set of metrics per row; NaN is written as ``null``.

    Args:
        run_dir: the run directory (created if needed).
        resume_step: continue an existing file, dropping rows after this step.
        resume_seed: for seeds trained one after another: rows of earlier seeds
            are kept whole, rows of later seeds dropped, and ``resume_step``
            applies to this seed only (None: it applies to every seed).
    """

    file_name = JSONL_FILE

    def _write_existing(self, file: TextIO, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._write(file, row)

    def _write(self, file: TextIO, row: dict[str, Any]) -> None:
        clean = {name: (None if is_missing(value) else value) for name, value in row.items()}
        file.write(json.dumps(clean, allow_nan=False) + "\n")


def metrics_file(run_dir: str | os.PathLike) -> Path:
    """The metrics file of ``run_dir``: ``metrics.csv``, else ``metrics.jsonl``.

    Raises:
        FileNotFoundError: neither exists (message names the directory).
    """
    run_dir = Path(run_dir)
    for name in (CSV_FILE, JSONL_FILE):
        if (run_dir / name).is_file():
            return run_dir / name
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} is not a directory; pass a run directory.")
    raise FileNotFoundError(
        f"{run_dir} has no {CSV_FILE} or {JSONL_FILE}; was it written by a CSVLogger or "
        "JSONLLogger (memorax train writes one)?"
    )


def read_metrics(run_dir: str | os.PathLike) -> dict[int, dict[str, np.ndarray]]:
    """Read a run's metrics file back as one series per seed.

    Returns:
        ``{seed: {"step": int64 [n], name: float64 [n], ...}}`` sorted by step;
        missing values are NaN, and a metric a seed never logged is all NaN.
    """
    rows = _read_rows(metrics_file(run_dir))
    names = sorted({name for row in rows for name in row} - set(_INDEX))
    series: dict[int, dict[str, np.ndarray]] = {}
    for seed in sorted({row["seed"] for row in rows}):
        seed_rows = sorted((r for r in rows if r["seed"] == seed), key=lambda r: r["step"])
        columns: dict[str, np.ndarray] = {
            "step": np.array([r["step"] for r in seed_rows], np.int64)
        }
        for name in names:
            columns[name] = np.array([r.get(name, math.nan) for r in seed_rows], np.float64)
        series[seed] = columns
    return series


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a metrics file: ``step`` and ``seed`` as int, metrics as float (NaN if missing)."""
    rows: list[dict[str, Any]] = []
    try:
        if path.suffix == ".csv":
            with path.open(newline="") as file:
                for record in csv.DictReader(file):
                    rows.append(_parse_row(record))
        else:
            with path.open() as file:
                for line in file:
                    if line.strip():
                        rows.append(_parse_row(json.loads(line)))
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path} is not a memorax metrics file (rows need integer 'step' and 'seed' "
            f"and numeric metrics): {error}"
        ) from error
    return rows


def _parse_row(record: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"step": int(record["step"]), "seed": int(record["seed"])}
    for name, value in record.items():
        if name not in _INDEX:
            row[name] = _number(value)
    return row


def _number(value: Any) -> float | int:
    """A cell as written: integers stay integers (counters rewritten on resume keep their
    form), anything else is a float, an empty cell NaN."""
    if value in ("", None):
        return math.nan
    if isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit()):
        return int(value)
    return float(value)


def _cell(value: float | int) -> str | float | int:
    return "" if is_missing(value) else value


def _header_metrics(path: Path) -> list[str] | None:
    """The metric columns of a CSV file's header (None: not a CSV or no header yet)."""
    if path.suffix != ".csv":
        return None
    with path.open(newline="") as file:
        header = next(csv.reader(file), None)
    return header[len(_INDEX) :] if header else None


def _kept_on_resume(row: dict[str, Any], resume_step: int, resume_seed: int | None) -> bool:
    """Whether a row logged before an interruption survives resuming at ``resume_step``."""
    if resume_seed is None:
        return row["step"] <= resume_step
    seed = int(row["seed"])
    return seed < resume_seed or (seed == resume_seed and row["step"] <= resume_step)
