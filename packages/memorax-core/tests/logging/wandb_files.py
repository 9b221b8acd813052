"""Read an offline W&B run (``run-<id>.wandb``) back, independently of the logger.

The file is W&B's transaction log: a 7-byte header (``:W&B``, magic
``0xBEE1``, version 0), then 32 KiB blocks of chunks, each with a 7-byte
header ``uint32 crc32(type + data)``, ``uint16 length``, ``uint8 type``
(1 full, 2 first, 3 middle, 4 last); a block tail shorter than a chunk
header is zero padding. Each record is a serialised ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

_BLOCK = 32 * 1024
_HEADER = 7


def read_records(path: Path) -> list[Any]:
    """Every record in the file, CRCs checked."""
    data = path.read_bytes()
    ident, magic, version = struct.unpack_from("<4sHB", data, 0)
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), f"{path} is not a W&B log"
    records, pending, offset = [], b"", _HEADER
    while offset + _HEADER <= len(data):
        left = _BLOCK - offset % _BLOCK
        if left < _HEADER:
            offset += left
            continue
        crc, length, kind = struct.unpack_from("<IHB", data, offset)
        if kind == 0:
            offset += left
            continue
        chunk = data[offset + _HEADER : offset + _HEADER + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc, f"bad CRC in {path}"
        offset += _HEADER + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def read_run(path: Path) -> dict[str, Any]:
    """The run's name, group, id, config and history ``[{"_step": s, name: value}, ...]``."""
    run: dict[str, Any] = {"history": [], "config": {}}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(
                id=record.run.run_id,
                name=record.run.display_name,
                group=record.run.run_group,
                project=record.run.project,
            )
            for item in record.run.config.update:
                run["config"][item.key] = json.loads(item.value_json)
        elif kind == "history":
            row = {}
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                row[key] = json.loads(item.value_json)
            run["history"].append(row)
    return run
