"""Lumped-node thermal model: an outer structure exchanging heat with space, and internal nodes.

Why lumped: a handful of nodes reproduces what the flight software sees (eclipse cycling of a
few to ~20 K, the radio warming while it transmits, the battery warming while it works) at a
cost of microseconds per tick. The board, battery and radio are coupled to the structure by
conductances and heated by their loads, the converter losses and the battery's I^2 R.

The structure (with any deployable wings, lumped into it) absorbs sunlight face by face for the
actual attitude, Earth infrared and albedo, and radiates to deep space. Its outer surfaces are
GaAs solar cells where the panels put them and black polyurethane paint elsewhere (the stand-in
for the dark solder mask of the panel PCBs and the frame), with the absorptance/emittance pairs
of Fortescue, Swinerd & Stark, *Spacecraft Systems Engineering* (4th ed., table 11.3): cells
alpha 0.88 / epsilon 0.80, black polyurethane paint 0.95 / 0.90. The same table gives white
silicone paint 0.26 / 0.83 (set `paint_absorptivity`/`paint_emissivity` for a white satellite;
the tumbling body then runs ~18 K colder). Sunlight the cells
turn into electricity leaves the structure only when the power system draws it; what the EPS
does not take (shunted) stays in the panels as heat.

Earth view: for a tumbling body every surface element sees the Earth, averaged over
orientations, with the view factor F = (1 - cos rho) / 2, where sin rho = R_earth / r is the
Earth's angular radius (the nadir-plate factor (R/r)^2 is that of one face looking straight
down). Earth IR absorbed = F * 237 W/m2 * sum(epsilon * A); albedo = F * 0.30 * S * max(0, cos
zeta) * sum(alpha * A), zeta the sun's zenith angle at the sub-satellite point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from .frames import Vec3
from .power import BODY_PANELS_3U, Panel

STEFAN_BOLTZMANN = 5.670374419e-8
KELVIN = 273.15
EARTH_IR_W_M2 = 237.0
EARTH_ALBEDO = 0.30
EARTH_RADIUS_KM = 6378.137
BODY_FACE_NORMALS: tuple[Vec3, ...] = (
    (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, -1.0),
)


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
    cell_absorptivity: float = 0.88  # GaAs cells (Fortescue et al., table 11.3)
    cell_emissivity: float = 0.80
    paint_absorptivity: float = 0.95  # black polyurethane paint (white silicone: 0.26 / 0.83)
    paint_emissivity: float = 0.90
    face_areas_m2: tuple[float, float, float] = (0.034, 0.034, 0.010)  # X, Y, Z faces of a 3U
    nodes: tuple[ThermalNode, ...] = field(
        default_factory=lambda: (
            ThermalNode("board", 300.0, 0.5),
            ThermalNode("battery", 250.0, 0.3),
            ThermalNode("radio", 150.0, 0.4),
        )
    )

    def __post_init__(self) -> None:
        for name in ("cell_absorptivity", "cell_emissivity", "paint_absorptivity", "paint_emissivity"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} {getattr(self, name)} must be in (0, 1]")
        names = [n.name for n in self.nodes]
        if "structure" in names or len(names) != len(set(names)):
            raise ValueError(f"node names must be unique and not 'structure': {names}")

    @property
    def total_area_m2(self) -> float:
        return 2.0 * sum(self.face_areas_m2)


@dataclass(frozen=True)
class Surface:
    """One outer surface of the structure node: outward normal (body frame), area, finish."""

    normal: Vec3
    area_m2: float
    absorptivity: float
    emissivity: float


def surfaces_for(config: ThermalConfig, panels: Iterable[Panel] = BODY_PANELS_3U) -> tuple[Surface, ...]:
    """The six body faces (cells where body panels sit, paint elsewhere) and both sides of each wing."""
    panels = tuple(panels)
    areas = (config.face_areas_m2[0], config.face_areas_m2[0], config.face_areas_m2[1],
             config.face_areas_m2[1], config.face_areas_m2[2], config.face_areas_m2[2])
    result: list[Surface] = []
    for normal, area in zip(BODY_FACE_NORMALS, areas, strict=True):
        cells = sum(p.cell_area_m2 for p in panels if not p.deployable and _same(p.normal, normal))
        if cells > area * (1 + 1e-9):
            raise ValueError(f"body panels on face {normal} hold {cells} m2 of cells on a {area} m2 face")
        result.append(_mixed(config, normal, area, cells))
    for p in panels:
        if p.deployable:
            result.append(_mixed(config, p.normal, p.plate_area_m2, p.cell_area_m2))
            back = (-p.normal[0], -p.normal[1], -p.normal[2])
            result.append(Surface(back, p.plate_area_m2, config.paint_absorptivity, config.paint_emissivity))
    return tuple(result)


def earth_view_factor(r_km: float) -> float:
    """Orientation-averaged view factor to the Earth of a tumbling surface: (1 - cos rho) / 2."""
    s = min(1.0, EARTH_RADIUS_KM / r_km)
    return (1.0 - math.sqrt(1.0 - s * s)) / 2.0


class ThermalModel:
    """Explicit integration of the node temperatures; stable for ticks well below 100 s."""

    def __init__(self, config: ThermalConfig, panels: Iterable[Panel] = BODY_PANELS_3U) -> None:
        self.config = config
        self.surfaces = surfaces_for(config, panels)
        self.emitting_area_m2 = sum(s.emissivity * s.area_m2 for s in self.surfaces)  # sum(eps A)
        self.absorbing_area_m2 = sum(s.absorptivity * s.area_m2 for s in self.surfaces)  # sum(alpha A)
        self.temperatures_c: dict[str, float] = {"structure": config.structure_initial_c}
        for node in config.nodes:
            self.temperatures_c[node.name] = node.initial_c
        self._nodes = config.nodes
        self._node_names = frozenset(n.name for n in config.nodes)
        self._lit = tuple((s.normal, s.absorptivity * s.area_m2) for s in self.surfaces)

    def absorbed_solar_w(self, sun_body: Vec3, irradiance_w_m2: float) -> float:
        """Sunlight absorbed by the faces turned to the sun: sum of alpha A cos over lit faces."""
        if irradiance_w_m2 <= 0.0:
            return 0.0
        sx, sy, sz = sun_body
        total = 0.0
        for n, alpha_area in self._lit:
            c = n[0] * sx + n[1] * sy + n[2] * sz
            if c > 0.0:
                total += alpha_area * c
        return total * irradiance_w_m2

    def earth_heat_w(self, r_km: float, albedo_cosine: float, solar_constant_w_m2: float) -> tuple[float, float]:
        """(Earth IR, albedo) absorbed by the tumbling structure, W."""
        f = earth_view_factor(r_km)
        ir = EARTH_IR_W_M2 * f * self.emitting_area_m2
        albedo = EARTH_ALBEDO * solar_constant_w_m2 * max(0.0, albedo_cosine) * f * self.absorbing_area_m2
        return ir, albedo

    def advance(
        self,
        dt: float,
        absorbed_solar_w: float,
        earth_w: float,
        heat_by_node: dict[str, float],
        electrical_drawn_w: float,
    ) -> None:
        """One explicit step; electrical_drawn_w is what the power system took from the cells."""
        temps = self.temperatures_c
        structure_k = temps["structure"] + KELVIN
        emitted_w = self.emitting_area_m2 * STEFAN_BOLTZMANN * structure_k**4
        structure_net = absorbed_solar_w - electrical_drawn_w + earth_w - emitted_w
        for name, watts in heat_by_node.items():
            if name not in self._node_names:  # "structure", or a node this configuration lumps into it
                structure_net += watts
        new_temps = dict(temps)
        for node in self._nodes:
            flow_to_structure = node.conductance_to_structure_w_k * (temps[node.name] - temps["structure"])
            structure_net += flow_to_structure
            node_net = heat_by_node.get(node.name, 0.0) - flow_to_structure
            new_temps[node.name] = temps[node.name] + node_net * dt / node.heat_capacity_j_k
        new_temps["structure"] = temps["structure"] + structure_net * dt / self.config.structure_heat_capacity_j_k
        self.temperatures_c = new_temps


def _same(a: Vec3, b: Vec3) -> bool:
    return abs(a[0] - b[0]) + abs(a[1] - b[1]) + abs(a[2] - b[2]) < 1e-6


def _mixed(config: ThermalConfig, normal: Vec3, area: float, cells: float) -> Surface:
    paint = area - cells
    alpha = (cells * config.cell_absorptivity + paint * config.paint_absorptivity) / area
    eps = (cells * config.cell_emissivity + paint * config.paint_emissivity) / area
    return Surface(normal, area, alpha, eps)
