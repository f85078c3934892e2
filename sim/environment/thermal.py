"""Lumped-node thermal model: an outer structure exchanging heat with space, and internal nodes.

Why lumped: a handful of nodes reproduces what the flight software sees (eclipse cycling of a
few to ~20 K, the radio warming while it transmits, the battery warming while it works) at a
cost of microseconds per tick. The structure absorbs sunlight (by the actual projected area of
the tumbling body), Earth infrared and albedo, and radiates to deep space; the board, battery
and radio are coupled to it by conductances and heated by their loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STEFAN_BOLTZMANN = 5.670374419e-8
KELVIN = 273.15
EARTH_IR_W_M2 = 237.0
EARTH_ALBEDO = 0.30


@dataclass(frozen=True)
class ThermalNode:
    name: str
    heat_capacity_j_k: float
    conductance_to_structure_w_k: float
    initial_c: float = 15.0

    def __post_init__(self) -> None:
        if self.heat_capacity_j_k <= 0 or self.conductance_to_structure_w_k <= 0:
            raise ValueError(f"thermal node {self.name}: capacity and conductance must be positive")


@dataclass(frozen=True)
class ThermalConfig:
    structure_heat_capacity_j_k: float = 1500.0
    structure_initial_c: float = 10.0
    absorptivity: float = 0.75  # triple-junction cells and black-anodised frame
    emissivity: float = 0.55  # cells ~0.85, bare/alodined aluminium rails ~0.1
    face_areas_m2: tuple[float, float, float] = (0.034, 0.034, 0.010)  # X, Y, Z faces of a 3U
    nodes: tuple[ThermalNode, ...] = field(
        default_factory=lambda: (
            ThermalNode("board", 300.0, 0.5),
            ThermalNode("battery", 250.0, 0.3),
            ThermalNode("radio", 150.0, 0.4),
        )
    )

    def __post_init__(self) -> None:
        if not 0 < self.absorptivity <= 1 or not 0 < self.emissivity <= 1:
            raise ValueError("absorptivity and emissivity must be in (0, 1]")
        names = [n.name for n in self.nodes]
        if "structure" in names or len(names) != len(set(names)):
            raise ValueError(f"node names must be unique and not 'structure': {names}")

    @property
    def total_area_m2(self) -> float:
        return 2.0 * sum(self.face_areas_m2)


class ThermalModel:
    """Explicit integration of the node temperatures; stable for ticks well below 100 s."""

    def __init__(self, config: ThermalConfig) -> None:
        self.config = config
        self.temperatures_c: dict[str, float] = {"structure": config.structure_initial_c}
        for node in config.nodes:
            self.temperatures_c[node.name] = node.initial_c
        self._nodes = config.nodes

    def projected_area_m2(self, sun_body: tuple[float, float, float]) -> float:
        """Area the box presents to the sun: sum of |cos| per axis times the face area."""
        ax, ay, az = self.config.face_areas_m2
        return ax * abs(sun_body[0]) + ay * abs(sun_body[1]) + az * abs(sun_body[2])

    def advance(
        self,
        dt: float,
        absorbed_solar_w: float,
        earth_view_factor: float,
        albedo_cosine: float,
        solar_constant_w_m2: float,
        heat_by_node: dict[str, float],
        electrical_output_w: float,
    ) -> None:
        """One explicit step; electrical_output_w is the sunlight the cells turned into electricity."""
        cfg = self.config
        temps = self.temperatures_c
        structure_k = temps["structure"] + KELVIN
        quarter_area = cfg.total_area_m2 / 4.0  # mean projected area of a tumbling convex body
        earth_w = (
            cfg.emissivity * EARTH_IR_W_M2 * earth_view_factor
            + cfg.absorptivity * EARTH_ALBEDO * solar_constant_w_m2 * earth_view_factor * max(0.0, albedo_cosine)
        ) * quarter_area
        emitted_w = cfg.emissivity * STEFAN_BOLTZMANN * cfg.total_area_m2 * structure_k**4
        structure_net = absorbed_solar_w * cfg.absorptivity - electrical_output_w + earth_w - emitted_w
        structure_net += heat_by_node.get("structure", 0.0)
        new_temps = dict(temps)
        for node in self._nodes:
            flow_to_structure = node.conductance_to_structure_w_k * (temps[node.name] - temps["structure"])
            structure_net += flow_to_structure
            node_net = heat_by_node.get(node.name, 0.0) - flow_to_structure
            new_temps[node.name] = temps[node.name] + node_net * dt / node.heat_capacity_j_k
        new_temps["structure"] = temps["structure"] + structure_net * dt / cfg.structure_heat_capacity_j_k
        self.temperatures_c = new_temps
