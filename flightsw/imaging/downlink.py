"""The "file downlink request" interface between imaging and whatever moves files to the ground.

Imaging only says *which file, under which name, how urgent*; the CFDP entity
(``flightsw.filetransfer.CfdpEntity.put`` has exactly this shape) or a future link-level
scheduler decides when it goes. Keeping it a protocol (the ``FILE_DOWNLINK`` port of
``flightsw.core.ports``) lets imaging run and be tested without a radio.
"""

from __future__ import annotations

from flightsw.core.ports import FileDownlink

__all__ = ["FileDownlink", "THUMBNAIL_PRIORITY", "PREVIEW_PRIORITY", "FULL_PRIORITY", "CATALOG_PRIORITY"]

THUMBNAIL_PRIORITY = 2
PREVIEW_PRIORITY = 4
FULL_PRIORITY = 6
CATALOG_PRIORITY = 3
