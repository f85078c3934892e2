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

from pathlib import Path

from flightsw.config import ConfigError, MissionConfig
from flightsw.filetransfer.entity_config import EntityConfig


def entity_config_from(config: MissionConfig) -> EntityConfig | None:
    """``EntityConfig`` from ``[filetransfer]`` (validated with the config), or None when absent."""
    section = config.filetransfer
    if section is None:
        return None
    work_dir = Path(section.work_dir)
    if not work_dir.is_absolute():
        work_dir = config.data_dir / work_dir
    try:
        return EntityConfig(local_id=section.local_id, remote_id=section.remote_id, work_dir=work_dir,
                            **section.protocol_options())
    except ValueError as exc:  # checked at load already; kept for configs built in code
        raise ConfigError(f"filetransfer: {exc}") from None
