"""The ``[filetransfer]`` table: CFDP entity ids and protocol timers, validated with clear errors.

    [filetransfer]
    local_id = 2          # this satellite's CFDP entity id
    remote_id = 1         # the ground station's
    max_pdu_len = 200     # must fit one link frame with its headers
    ack_interval_s = 10   # positive-ACK timer; ~2x the round trip at the link's bit rate
    nak_interval_s = 10
    work_dir = "cfdp"     # relative to storage.data_dir

The radio link builds the entity (it owns the PDU transport) from this.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from flightsw.config import ConfigError, MissionConfig
from flightsw.filetransfer.entity import EntityConfig

_NUMERIC = {f.name for f in fields(EntityConfig)} - {"local_id", "remote_id", "work_dir"}


def entity_config_from(config: MissionConfig) -> EntityConfig | None:
    """``EntityConfig`` from ``[filetransfer]``, or None when the table is absent."""
    section = dict(config.section("filetransfer"))
    if not section:
        return None
    unknown = set(section) - _NUMERIC - {"local_id", "remote_id", "work_dir"}
    if unknown:
        raise ConfigError(f"filetransfer: unknown key(s) {sorted(unknown)}")
    for key in ("local_id", "remote_id"):
        if key not in section:
            raise ConfigError(f"filetransfer.{key}: required")
    work_dir = Path(str(section.pop("work_dir", "cfdp")))
    if not work_dir.is_absolute():
        work_dir = config.data_dir / work_dir
    try:
        return EntityConfig(work_dir=work_dir, **section)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"filetransfer: {exc}") from None
