"""Register-level simulated parts; `SIM_PARTS` maps a config `kind` to its model."""

from sim.parts.ads1115 import SimADS1115
from sim.parts.base import SimPart
from sim.parts.environment import ConstantEnvironment, EnvironmentSource, NoisyEnvironment
from sim.parts.ina219 import SimINA219
from sim.parts.lis2mdl import SimLIS2MDL
from sim.parts.lsm6dsox import SimLSM6DSOX
from sim.parts.mcp9808 import SimMCP9808

SIM_PARTS: dict[str, type[SimPart]] = {
    "ina219": SimINA219, "mcp9808": SimMCP9808, "lis2mdl": SimLIS2MDL,
    "lsm6dsox": SimLSM6DSOX, "ads1115": SimADS1115,
}

__all__ = ["SIM_PARTS", "ConstantEnvironment", "EnvironmentSource", "NoisyEnvironment",
           "SimADS1115", "SimINA219", "SimLIS2MDL", "SimLSM6DSOX", "SimMCP9808", "SimPart"]
