"""The SatYAML file a team submits to gr-satellites, from the mission config.

Why generated: the name, the bit rate and the framing in it must be the ones the satellite flies,
so they come from the config (``[mission] name``, ``[link] bit_rate``) rather than from a hand
copy. The beacon's field layout goes to SatNOGS as the Kaitai description ``docs/beacon.ksy``
(``flightsw dict --format ksy``); gr-satellites itself is given its generic ``ax25`` telemetry
parser, which prints the AX.25 header and the payload. The NORAD id and the downlink frequency
are not in the config (assigned after launch / by IARU coordination): they are arguments, with
placeholders (99999, the simulator's 437.000 MHz) until then.
"""

from __future__ import annotations

from flightsw.config import MissionConfig
from flightsw.link.settings import load_link_settings

PLACEHOLDER_NORAD = 99999
PLACEHOLDER_FREQUENCY_HZ = 437.0e6


def _rate_label(bit_rate: float) -> str:
    """gr-satellites' transmitter label style: 9600 -> 9k6, 1200 -> 1k2, 500 -> 500."""
    rate = int(bit_rate)
    if rate < 1000:
        return str(rate)
    whole, rest = divmod(rate, 1000)
    return f"{whole}k{str(rest).rstrip('0')}" if rest else f"{whole}k"


def satyaml(config: MissionConfig, norad: int = PLACEHOLDER_NORAD,
            frequency_hz: float = PLACEHOLDER_FREQUENCY_HZ) -> str:
    """The SatYAML text: one FSK downlink at the link's bit rate, AX.25 with G3RUH scrambling
    (the 9600-baud convention the bench's direwolf and the simulated transceiver speak), or
    AFSK 1200 AX.25 (Bell 202 tones) for a 1200 bit/s link."""
    if not 0 < norad < 10**9:
        raise ValueError(f"NORAD id {norad} must be a positive catalogue number")
    if not 1e6 <= frequency_hz <= 1e11:
        raise ValueError(f"downlink frequency {frequency_hz:g} Hz is not a radio frequency in Hz")
    link = load_link_settings(config)
    rate = int(link.bit_rate)
    if rate == 1200:
        modulation = "    modulation: AFSK\n    baudrate: 1200\n    af_carrier: 1700\n    deviation: 500\n    framing: AX.25\n"
        label = "1k2 AFSK downlink"
    else:
        modulation = f"    modulation: FSK\n    baudrate: {rate}\n    framing: AX.25 G3RUH\n"
        label = f"{_rate_label(rate)} FSK downlink"
    placeholders = []
    if norad == PLACEHOLDER_NORAD:
        placeholders.append("the NORAD id")
    if frequency_hz == PLACEHOLDER_FREQUENCY_HZ:
        placeholders.append("the frequency")
    which = " and ".join(placeholders)
    note = (f"# {which[:1].upper()}{which[1:]} {'are placeholders' if len(placeholders) > 1 else 'is a placeholder'}"
            " until assigned (flightsw ground satyaml --norad N --frequency HZ).\n") if placeholders else ""
    return (
        f"# SatYAML for gr-satellites, generated from the mission config by `flightsw ground satyaml`.\n"
        f"# Beacon layout for SatNOGS (Kaitai Struct): docs/beacon.ksy. Source callsign: {link.callsign}.\n"
        f"{note}"
        f"name: {config.mission.name}\n"
        f"alternative_names:\n"
        f"norad: {norad}\n"
        f"data:\n"
        f"  &tlm Telemetry:\n"
        f"    telemetry: ax25\n"
        f"transmitters:\n"
        f"  {label}:\n"
        f"    frequency: {frequency_hz / 1e6:.3f}e+6\n"
        f"{modulation}"
        f"    data:\n"
        f"    - *tlm\n"
    )
