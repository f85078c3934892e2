"""The "file downlink request" interface between imaging and whatever moves files to the ground.

Imaging only says *which file, under which name, how urgent*; the CFDP entity
(``flightsw.filetransfer.CfdpEntity.put`` has exactly this shape) or a future link-level
scheduler decides when it goes. Keeping it a protocol lets imaging run and be tested without a
radio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

THUMBNAIL_PRIORITY = 2
PREVIEW_PRIORITY = 4
FULL_PRIORITY = 6
CATALOG_PRIORITY = 3


class FileDownlink(Protocol):
    async def put(self, source: Path, dest_name: str, priority: int = 5) -> int:
        """Queue ``source`` for the ground as ``dest_name``; lower priority goes first.

        Returns a transfer id. Must copy or otherwise tolerate ``source`` disappearing later
        (an image can be evicted while queued); raise ``FileNotFoundError`` if it is gone now.
        """
        ...
