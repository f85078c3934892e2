"""Electrical power: solar panels, one battery, regulated rails and the loads of each device.

Why this shape: the simulated INA219s must read currents and voltages that follow from the real
energy balance, so that an overloaded satellite visibly drains its battery and a brownout happens
when it should. Every joule is booked in :class:`EnergyLedger` so a test can show the balance
closes: solar used - loads - converter losses - battery resistive loss == change of stored energy.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field

from .frames import Vec3

# Li-ion (NMC 18650) open-circuit voltage per cell against state of charge.
DEFAULT_OCV_CURVE: tuple[tuple[float, float], ...] = (
    (0.00, 3.00), (0.05, 3.40), (0.10, 3.52), (0.20, 3.61), (0.30, 3.67), (0.40, 3.72),
    (0.50, 3.78), (0.60, 3.85), (0.70, 3.93), (0.80, 4.01), (0.90, 4.09), (1.00, 4.18),
)


@dataclass(frozen=True)
class Panel:
    """A solar panel: outward normal in the body frame, active cell area and efficiency.

    A body-mounted panel is part of a face of the structure (the thermal model takes the face
    area from ThermalConfig); a deployable one is a plate of its own, `plate_area_m2` a side,
    cells on the front (along `normal`) and paint on the back.
    """

    name: str
    normal: Vec3
    cell_area_m2: float
    efficiency: float = 0.28
    deployable: bool = False
    plate_area_m2: float = 0.0

    def __post_init__(self) -> None:
        length = math.sqrt(sum(c * c for c in self.normal))
        if abs(length - 1.0) > 1e-6:
            raise ValueError(f"panel {self.name}: normal {self.normal} is not a unit vector")
        if not 0.0 < self.cell_area_m2 < 1.0:
            raise ValueError(f"panel {self.name}: cell_area_m2 {self.cell_area_m2} must be in (0, 1)")
        if not 0.0 < self.efficiency < 0.5:
            raise ValueError(f"panel {self.name}: efficiency {self.efficiency} must be in (0, 0.5)")
        if self.deployable and not self.cell_area_m2 <= self.plate_area_m2 < 1.0:
            raise ValueError(f"panel {self.name}: a deployable panel's plate_area_m2 must hold its cells (and be < 1 m2)")


# 3U body-mounted: seven 30 cm2 triple-junction cells on each long face, two on the +Z end.
BODY_PANELS_3U: tuple[Panel, ...] = (
    Panel("+X", (1.0, 0.0, 0.0), 0.0211),
    Panel("-X", (-1.0, 0.0, 0.0), 0.0211),
    Panel("+Y", (0.0, 1.0, 0.0), 0.0211),
    Panel("-Y", (0.0, -1.0, 0.0), 0.0211),
    Panel("+Z", (0.0, 0.0, 1.0), 0.0060),
)
# Optional pair of 3U deployable wings, hinged at -Z and opened flat facing +X.
DEPLOYABLE_WINGS_3U: tuple[Panel, ...] = (
    Panel("wing-1", (1.0, 0.0, 0.0), 0.0211, deployable=True, plate_area_m2=0.034),
    Panel("wing-2", (1.0, 0.0, 0.0), 0.0211, deployable=True, plate_area_m2=0.034),
)


@dataclass(frozen=True)
class Rail:
    """A power rail: nominal voltage and the efficiency of the converter feeding it from the battery."""

    name: str
    voltage: float | None  # None: the unregulated battery bus
    converter_efficiency: float = 1.0
    thermal_node: str = "board"

    def __post_init__(self) -> None:
        if not 0.5 <= self.converter_efficiency <= 1.0:
            raise ValueError(f"rail {self.name}: converter efficiency must be in [0.5, 1]")


@dataclass(frozen=True)
class Load:
    """A device's consumption per power state, its rail, and where its heat goes."""

    device: str
    rail: str
    states_w: dict[str, float]
    initial_state: str
    thermal_node: str = "board"
    radiated_w: dict[str, float] = field(default_factory=dict)  # RF power leaving via the antenna

    def __post_init__(self) -> None:
        if self.initial_state not in self.states_w:
            raise ValueError(f"load {self.device}: initial state {self.initial_state!r} not in {sorted(self.states_w)}")
        for state, watts in self.states_w.items():
            if not 0.0 <= watts <= 50.0:
                raise ValueError(f"load {self.device}: {state} draws {watts} W, expected 0-50 W")
            if self.radiated_w.get(state, 0.0) > watts:
                raise ValueError(f"load {self.device}: {state} radiates more than it draws")


DEFAULT_RAILS: tuple[Rail, ...] = (
    Rail("vbat", None, 1.0),
    Rail("5v", 5.0, 0.90),
    Rail("3v3", 3.3, 0.88),
)
DEFAULT_LOADS: tuple[Load, ...] = (
    Load("obc", "5v", {"off": 0.0, "on": 0.9}, "on"),
    Load("radio", "vbat", {"off": 0.0, "rx": 0.25, "tx": 3.2}, "rx", "radio", {"tx": 1.0}),
    Load("camera", "5v", {"off": 0.0, "on": 1.3}, "off"),
    Load("payload", "5v", {"off": 0.0, "on": 2.5}, "off"),
    Load("sensors", "3v3", {"off": 0.0, "on": 0.12}, "on"),
    Load("adcs", "3v3", {"off": 0.0, "idle": 0.15, "detumble": 0.7}, "idle"),
    Load("heater", "vbat", {"off": 0.0, "on": 1.5}, "off", "battery"),
    Load("burn_wire", "vbat", {"off": 0.0, "on": 11.0}, "off"),  # antenna release: ~1.5 A from the pack
)


@dataclass(frozen=True)
class BatteryConfig:
    cells_series: int = 2  # 2S2P 18650 pack, 8.4 V full (deploy/sim.toml's battery limits)
    cells_parallel: int = 2
    cell_capacity_ah: float = 2.6
    cell_resistance_ohm: float = 0.045  # at 25 C
    initial_soc: float = 0.8
    max_charge_c_rate: float = 0.5
    ocv_curve: tuple[tuple[float, float], ...] = DEFAULT_OCV_CURVE
    cutoff_cell_voltage: float = 3.0  # EPS undervoltage lockout under load
    recovery_cell_voltage: float = 3.55  # open-circuit voltage to re-enable the rails
    capacity_fade: float = 0.0  # fraction of the cells' capacity lost with age (0.2 at the usual 80 % end of life)
    resistance_growth: float = 1.0  # internal resistance relative to a new cell

    def __post_init__(self) -> None:
        if self.cells_series < 1 or self.cells_parallel < 1:
            raise ValueError("battery needs at least one cell in series and one in parallel")
        if not 0.1 <= self.cell_capacity_ah <= 20.0:
            raise ValueError(f"cell_capacity_ah {self.cell_capacity_ah} must be in [0.1, 20]")
        if not 0.0 <= self.initial_soc <= 1.0:
            raise ValueError(f"initial_soc {self.initial_soc} must be in [0, 1]")
        socs = [p[0] for p in self.ocv_curve]
        volts = [p[1] for p in self.ocv_curve]
        if socs[0] != 0.0 or socs[-1] != 1.0 or any(b <= a for a, b in zip(socs, socs[1:], strict=False)):
            raise ValueError("ocv_curve must have strictly increasing SoC from 0 to 1")
        if any(b < a for a, b in zip(volts, volts[1:], strict=False)):
            raise ValueError("ocv_curve voltages must not decrease with SoC")
        if self.cutoff_cell_voltage >= self.recovery_cell_voltage:
            raise ValueError("recovery_cell_voltage must be above cutoff_cell_voltage (hysteresis)")
        if not 0.0 <= self.capacity_fade <= 0.5:
            raise ValueError(f"capacity_fade {self.capacity_fade} must be in [0, 0.5]")
        if not 1.0 <= self.resistance_growth <= 5.0:
            raise ValueError(f"resistance_growth {self.resistance_growth} must be in [1, 5]")

    @property
    def capacity_ah(self) -> float:
        return self.cell_capacity_ah * self.cells_parallel * (1.0 - self.capacity_fade)


@dataclass(frozen=True)
class PowerConfig:
    panels: tuple[Panel, ...] = BODY_PANELS_3U
    rails: tuple[Rail, ...] = DEFAULT_RAILS
    loads: tuple[Load, ...] = DEFAULT_LOADS
    battery: BatteryConfig = BatteryConfig()
    mppt_efficiency: float = 0.95
    cell_temperature_coefficient: float = -0.0022  # relative efficiency change per kelvin from 28 C
    array_degradation: float = 0.0  # fraction of the cells' output lost with age (radiation, UV, cracks)
    wiring_loss: float = 0.0  # fraction lost between the array and the MPPT inputs (harness, diodes)
    eps_thermal_node: str = "board"  # where the MPPT and harness losses turn into heat

    def __post_init__(self) -> None:
        if not 0.5 <= self.mppt_efficiency <= 1.0:
            raise ValueError(f"mppt_efficiency {self.mppt_efficiency} must be in [0.5, 1]")
        if not 0.0 <= self.array_degradation <= 0.5:
            raise ValueError(f"array_degradation {self.array_degradation} must be in [0, 0.5]")
        if not 0.0 <= self.wiring_loss <= 0.2:
            raise ValueError(f"wiring_loss {self.wiring_loss} must be in [0, 0.2]")
        rail_names = {r.name for r in self.rails}
        for load in self.loads:
            if load.rail not in rail_names:
                raise ValueError(f"load {load.device} is on unknown rail {load.rail!r}; rails: {sorted(rail_names)}")
        devices = [load.device for load in self.loads]
        if len(devices) != len(set(devices)):
            raise ValueError(f"duplicate load device names in {devices}")


#: End-of-life assumptions for the reference mission (3 years at 530 km): triple-junction cells
#: lose ~6 % to radiation and ~3 % to UV darkening and contamination; harness and blocking diodes
#: ~3 %; Li-ion packs are retired at 80 % capacity with ~1.5x the new resistance.
END_OF_LIFE = {"array_degradation": 0.10, "wiring_loss": 0.03, "battery_capacity_fade": 0.20,
               "battery_resistance_growth": 1.5}


@dataclass
class EnergyLedger:
    """Cumulative energy (J) through each path since the start; used to prove the balance closes.

    The electrical balance starts at the MPPT outputs (solar_used); `array_drawn` is what the
    cells delivered for it, the difference (`input_losses`, MPPT and harness) heats the EPS.
    `radiated` is the RF part of the loads, the only electrical energy that leaves as no heat.
    """

    array_drawn: float = 0.0
    input_losses: float = 0.0
    radiated: float = 0.0
    heat: float = 0.0  # booked into thermal nodes (loads less RF, converter, MPPT/harness, I^2 R)
    solar_available: float = 0.0
    solar_used: float = 0.0
    shunted: float = 0.0
    loads: float = 0.0
    converter_losses: float = 0.0
    battery_resistive: float = 0.0
    unserved: float = 0.0  # demand dropped by undervoltage lockout

    def residual(self, stored_change_j: float) -> float:
        """(in - out) - stored change; zero for a closed balance."""
        return self.solar_used - self.loads - self.converter_losses - self.battery_resistive - stored_change_j

    def heat_residual(self, stored_change_j: float) -> float:
        """Electricity drawn from the cells that became neither heat, RF nor stored energy; zero when closed."""
        return self.array_drawn - self.radiated - stored_change_j - self.heat


@dataclass(frozen=True)
class RailReading:
    """What an INA219 on this rail measures: bus voltage (V) and current (A, positive into the load)."""

    voltage: float
    current: float

    @property
    def power(self) -> float:
        return self.voltage * self.current


class Battery:
    """State of charge with an OCV curve and a temperature-dependent internal resistance."""

    def __init__(self, config: BatteryConfig) -> None:
        self.config = config
        self.soc = config.initial_soc
        self._socs = [p[0] for p in config.ocv_curve]
        self._volts = [p[1] for p in config.ocv_curve]
        # cumulative energy per cell (Wh per Ah of capacity) at each curve point, trapezoids
        self._energy = [0.0]
        for i in range(1, len(self._socs)):
            width = self._socs[i] - self._socs[i - 1]
            self._energy.append(self._energy[-1] + width * (self._volts[i] + self._volts[i - 1]) / 2.0)

    def ocv(self, soc: float | None = None) -> float:
        """Pack open-circuit voltage at a state of charge (linear between curve points)."""
        s = self.soc if soc is None else min(1.0, max(0.0, soc))
        i = min(bisect_right(self._socs, s), len(self._socs) - 1)
        s0, s1 = self._socs[i - 1], self._socs[i]
        v0, v1 = self._volts[i - 1], self._volts[i]
        return (v0 + (v1 - v0) * (s - s0) / (s1 - s0)) * self.config.cells_series

    def resistance(self, temperature_c: float) -> float:
        """Pack resistance; Li-ion resistance roughly doubles from 25 C to -10 C."""
        factor = max(0.6, 1.0 + 0.03 * (25.0 - temperature_c))
        cfg = self.config
        return cfg.cell_resistance_ohm * cfg.resistance_growth * factor * cfg.cells_series / cfg.cells_parallel

    def stored_energy_j(self, soc: float | None = None) -> float:
        """Chemical energy above empty: capacity times the integral of the OCV curve."""
        s = self.soc if soc is None else soc
        i = min(bisect_right(self._socs, s), len(self._socs) - 1)
        s0 = self._socs[i - 1]
        v0 = self._volts[i - 1]
        v_at_s = v0 + (self._volts[i] - v0) * (s - s0) / (self._socs[i] - s0)
        per_cell = self._energy[i - 1] + (s - s0) * (v0 + v_at_s) / 2.0
        cfg = self.config
        return per_cell * cfg.cells_series * cfg.capacity_ah * 3600.0


@dataclass(frozen=True)
class PowerSnapshot:
    solar_power_w: float  # delivered by the MPPTs (used + shunted)
    solar_used_w: float
    load_power_w: float
    battery_voltage: float
    battery_current: float  # A, positive when discharging
    battery_soc: float
    battery_heat_w: float
    rails: dict[str, RailReading]
    undervoltage: bool


class PowerSystem:
    """Advances the battery by the balance of solar input and device loads over one tick."""

    def __init__(self, config: PowerConfig) -> None:
        self.config = config
        self.battery = Battery(config.battery)
        self.ledger = EnergyLedger()
        self.initial_stored_j = self.battery.stored_energy_j()
        self._rails = {r.name: r for r in config.rails}
        self._loads = {load.device: load for load in config.loads}
        self.load_states: dict[str, str] = {load.device: load.initial_state for load in config.loads}
        self.undervoltage = False
        self.heat_by_node: dict[str, float] = {}
        self.array_drawn_w = 0.0  # electrical power taken from the cells in the last tick
        self.snapshot = self._snapshot(0.0, 0.0, 0.0, self.battery.ocv(), 0.0, 0.0, {}, self.battery.soc)

    def set_load_state(self, device: str, state: str) -> None:
        """Record a device's power state (radio "tx", camera "on", ...); unknown names are errors."""
        load = self._loads.get(device)
        if load is None:
            raise KeyError(f"unknown power load {device!r}; known: {sorted(self._loads)}")
        if state not in load.states_w:
            raise ValueError(f"load {device} has no state {state!r}; states: {sorted(load.states_w)}")
        self.load_states[device] = state

    def solar_power_w(self, sun_body: Vec3, irradiance_w_m2: float, panel_temperature_c: float) -> float:
        """MPPT output of all panels for a sun direction in the body frame."""
        if irradiance_w_m2 <= 0.0:
            return 0.0
        cfg = self.config
        derate = (1.0 + cfg.cell_temperature_coefficient * (panel_temperature_c - 28.0)) * (
            1.0 - cfg.array_degradation) * (1.0 - cfg.wiring_loss)
        total = 0.0
        for panel in self.config.panels:
            n = panel.normal
            cos_angle = n[0] * sun_body[0] + n[1] * sun_body[1] + n[2] * sun_body[2]
            if cos_angle > 0.0:
                total += panel.cell_area_m2 * panel.efficiency * cos_angle
        return max(0.0, total * irradiance_w_m2 * derate * cfg.mppt_efficiency)

    def advance(self, dt: float, solar_available_w: float, battery_temperature_c: float) -> None:
        """Book one tick: solve the battery current from the power balance, then move the SoC."""
        battery = self.battery
        cfg = self.config.battery
        ocv = battery.ocv()
        resistance = battery.resistance(battery_temperature_c)
        if self.undervoltage and ocv >= cfg.recovery_cell_voltage * cfg.cells_series:
            self.undervoltage = False

        rail_load_w: dict[str, float] = dict.fromkeys(self._rails, 0.0)
        heat: dict[str, float] = {}
        radiated_w = 0.0
        if not self.undervoltage:
            for device, state in self.load_states.items():
                load = self._loads[device]
                watts = load.states_w[state]
                rail_load_w[load.rail] += watts
                radiated = load.radiated_w.get(state, 0.0)
                radiated_w += radiated
                heat[load.thermal_node] = heat.get(load.thermal_node, 0.0) + watts - radiated
        load_w = sum(rail_load_w.values())
        converter_loss_w = 0.0
        for name, watts in rail_load_w.items():
            rail = self._rails[name]
            loss = watts / rail.converter_efficiency - watts
            converter_loss_w += loss
            heat[rail.thermal_node] = heat.get(rail.thermal_node, 0.0) + loss
        demand_w = load_w + converter_loss_w

        # terminal power P = I * (OCV - I R), positive when discharging
        current = _battery_current(demand_w - solar_available_w, ocv, resistance)
        if current is None or ocv - current * resistance < cfg.cutoff_cell_voltage * cfg.cells_series:
            # the pack cannot hold the bus up: lockout drops every load until it recovers
            self.undervoltage = True
            self.ledger.unserved += demand_w * dt
            heat = {}
            load_w = converter_loss_w = demand_w = radiated_w = 0.0
            rail_load_w = dict.fromkeys(self._rails, 0.0)
            current = _battery_current(-solar_available_w, ocv, resistance) or 0.0
        max_charge = cfg.max_charge_c_rate * cfg.capacity_ah * min(1.0, max(0.0, (1.0 - battery.soc) / 0.03))
        if current < -max_charge:
            current = -max_charge  # charge regulator limit and constant-voltage taper near full
        terminal_w = current * (ocv - current * resistance)
        solar_used_w = demand_w - terminal_w
        resistive_w = current * current * resistance
        # the cells deliver what the MPPTs pass on plus the MPPT and harness losses (heat in the
        # EPS); the rest of their available output stays in the panels as heat (shunted)
        input_efficiency = self.config.mppt_efficiency * (1.0 - self.config.wiring_loss)
        drawn_w = solar_used_w / input_efficiency
        input_loss_w = drawn_w - solar_used_w
        self.array_drawn_w = drawn_w

        battery.soc = min(1.0, max(0.0, battery.soc - current * dt / 3600.0 / cfg.capacity_ah))
        ledger = self.ledger
        ledger.array_drawn += drawn_w * dt
        ledger.input_losses += input_loss_w * dt
        ledger.radiated += radiated_w * dt
        ledger.solar_available += solar_available_w * dt
        ledger.solar_used += solar_used_w * dt
        ledger.shunted += (solar_available_w - solar_used_w) * dt
        ledger.loads += load_w * dt
        ledger.converter_losses += converter_loss_w * dt
        ledger.battery_resistive += resistive_w * dt
        heat["battery"] = heat.get("battery", 0.0) + resistive_w
        heat[self.config.eps_thermal_node] = heat.get(self.config.eps_thermal_node, 0.0) + input_loss_w
        self.heat_by_node = heat
        ledger.heat += sum(heat.values()) * dt
        self.snapshot = self._snapshot(
            solar_available_w, solar_used_w, load_w, ocv - current * resistance, current, resistive_w,
            rail_load_w, battery.soc,
        )

    def _snapshot(
        self, solar_w: float, used_w: float, load_w: float, v_batt: float, i_batt: float,
        battery_heat_w: float, rail_load_w: dict[str, float], soc: float,
    ) -> PowerSnapshot:
        rails: dict[str, RailReading] = {}
        for name, rail in self._rails.items():
            watts = rail_load_w.get(name, 0.0)
            if self.undervoltage:
                rails[name] = RailReading(0.0, 0.0)
            elif rail.voltage is None:
                rails[name] = RailReading(v_batt, watts / v_batt if v_batt > 0 else 0.0)
            else:
                current = watts / rail.voltage
                rails[name] = RailReading(rail.voltage - 0.02 * current, current)  # trace droop
        rails["battery"] = RailReading(v_batt, i_batt)
        rails["solar"] = RailReading(v_batt if solar_w > 0 else 0.0, used_w / v_batt if v_batt > 0 else 0.0)
        return PowerSnapshot(
            solar_w, used_w, load_w, v_batt, i_batt, soc, battery_heat_w, rails,
            self.undervoltage,
        )

    def stored_change_j(self) -> float:
        return self.battery.stored_energy_j() - self.initial_stored_j


def _battery_current(terminal_power_w: float, ocv: float, resistance: float) -> float | None:
    """Current for a terminal power, the root of R I^2 - OCV I + P = 0 nearest zero; None if impossible."""
    discriminant = ocv * ocv - 4.0 * resistance * terminal_power_w
    if discriminant < 0.0:
        return None
    # numerically stable form of (OCV - sqrt(disc)) / (2R)
    return 2.0 * terminal_power_w / (ocv + math.sqrt(discriminant))
