"""Read TensorBoard event files back, independently of the code that wrote them.

An event file is a sequence of TFRecords: ``uint64 length``, ``uint32
masked crc32c(length)``, ``length`` bytes of a serialised ``Event`` proto,
``uint32 masked crc32c(data)``. The CRCs are not checked here; the protos
must parse.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tensorboardX.proto.event_pb2 import Event


def read_events(directory: Path) -> list[Event]:
    """Every event of every event file in ``directory``, files in name order."""
    events = []
    files = sorted(directory.glob("events.out.tfevents.*"))
    assert files, f"no event file in {directory}"
    for path in files:
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            record = data[offset + 12 : offset + 12 + length]
            offset += 12 + length + 4
            event = Event()
            event.ParseFromString(record)
            events.append(event)
    return events


def read_scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` from every event file in ``directory``."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    for event in read_events(directory):
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars
