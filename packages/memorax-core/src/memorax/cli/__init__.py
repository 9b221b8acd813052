"""The ``memorax`` command: ``memorax train`` and ``memorax plot``."""

from memorax.cli.main import main

__all__ = ["main"]
