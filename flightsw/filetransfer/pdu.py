"""Decoding raw CFDP PDUs, with the spacepackets 0.32 EOF condition-code defect corrected.

``EofPdu.unpack`` keeps the condition code in the high nibble without shifting it, so an EOF
(cancel, code 15) decodes as 240 and ``EofPdu.pack`` of that value overflows the byte. Every
PDU the entity receives goes through ``decode_pdu`` which shifts the nibble back.
"""

from __future__ import annotations

from spacepackets.cfdp import ConditionCode, GenericPduPacket
from spacepackets.cfdp.pdu import DirectiveType, EofPdu, PduFactory


class PduDecodeError(ValueError):
    """The bytes are not a PDU this entity can use (too short, bad CRC, unknown type)."""


def fix_eof_condition_code(eof: EofPdu) -> EofPdu:
    """Shift a raw high-nibble condition code back into ``ConditionCode`` range (idempotent)."""
    raw = int(eof.condition_code)
    if raw > 0x0F:
        eof.condition_code = ConditionCode(raw >> 4)
    else:
        eof.condition_code = ConditionCode(raw)
    return eof


def decode_pdu(raw: bytes | bytearray) -> GenericPduPacket:
    """Parse one PDU; raise ``PduDecodeError`` naming the problem instead of library errors."""
    if len(raw) < 4:
        raise PduDecodeError(f"PDU too short: {len(raw)} bytes")
    try:
        pdu = PduFactory.from_raw(raw)
    except Exception as exc:  # spacepackets raises several unrelated types here
        raise PduDecodeError(f"undecodable PDU ({type(exc).__name__}: {exc})") from exc
    if pdu is None:
        raise PduDecodeError("unknown PDU type")
    if getattr(pdu, "directive_type", None) == DirectiveType.EOF_PDU:
        fix_eof_condition_code(pdu)  # type: ignore[arg-type]
    return pdu
