"""GPIO lines over the simulated backend, and register-map declarations."""

from __future__ import annotations

import pytest

from hal.drivers import DRIVERS
from hal.gpio import GpioBank, GpioError, InputLine, OutputLine
from hal.regmap import Field, Register, RegisterMap, RegisterMapError, fields_value
from sim.gpio import SimGpioBackend
from sim.parts import SIM_PARTS, ConstantEnvironment


def test_outputs_inputs_and_active_low() -> None:
    backend = SimGpioBackend()
    bank = GpioBank()
    bank.add(OutputLine("radio_power", backend, 27, active_low=True, initial=False))
    bank.add(InputLine("deploy_switch", backend, 25, active_low=True, pull="up"))
    assert 27 not in backend.levels  # nothing requested until the bank is opened
    bank.open()
    assert backend.levels[27] is True  # off = high on an active-low switch
    bank.output("radio_power").set(True)
    assert backend.levels[27] is False and bank.output("radio_power").is_on
    assert bank.input("deploy_switch").read() is False  # pulled up = not pressed
    backend.drive_input(25, False)
    assert bank.input("deploy_switch").read() is True
    with pytest.raises(GpioError, match="no GPIO output named 'payload'"):
        bank.output("payload")
    with pytest.raises(GpioError, match="configured twice"):
        bank.add(OutputLine("other", backend, 27))
    with pytest.raises(GpioError, match="not an output"):
        backend.write(25, True)


def test_power_switch_listener_powers_a_sim_part() -> None:
    backend = SimGpioBackend()
    part = SIM_PARTS["mcp9808"](0x18, ConstantEnvironment())
    backend.setup_output(5, True)
    backend.on_change(5, part.power)
    part.faults.hung = True
    backend.write(5, False)
    assert not part.powered
    backend.write(5, True)
    assert part.powered and not part.faults.hung and part.power_cycles == 1


def test_register_fields_round_trip() -> None:
    reg = Register("CFG", 0x01, 2, fields=(Field("MODE", 0, 3), Field("GAIN", 11, 2)))
    raw = fields_value(reg, MODE=0b111, GAIN=0b10)
    assert raw == 0x1007
    assert reg.field("GAIN").get(raw) == 2
    assert reg.encode(raw) == b"\x10\x07" and reg.decode(b"\x10\x07") == raw
    assert reg.to_signed(0xFFFF) == -1
    with pytest.raises(RegisterMapError, match="does not fit field GAIN"):
        fields_value(reg, GAIN=4)
    with pytest.raises(RegisterMapError, match="no field"):
        reg.field("BOGUS")
    with pytest.raises(RegisterMapError, match="duplicate register address"):
        RegisterMap("X", (0x10,), (Register("A", 1), Register("B", 1)))


@pytest.mark.parametrize("kind", sorted(DRIVERS))
def test_every_driver_has_a_sim_twin_on_the_same_map(kind: str) -> None:
    assert SIM_PARTS[kind].regmap is DRIVERS[kind].regmap
    part = SIM_PARTS[kind](DRIVERS[kind].regmap.addresses[0], ConstantEnvironment())
    for reg in DRIVERS[kind].regmap.registers:  # every register reads back its reset value
        assert part.read(reg.address, reg.size) == reg.encode(reg.reset)
