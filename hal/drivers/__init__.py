"""Register-level drivers; `DRIVERS` maps a config `kind` to its driver class."""

from hal.drivers.ads1115 import ADS1115
from hal.drivers.base import I2CDriver
from hal.drivers.ina219 import INA219
from hal.drivers.lis2mdl import LIS2MDL
from hal.drivers.lsm6dsox import LSM6DSOX
from hal.drivers.mcp9808 import MCP9808

DRIVERS: dict[str, type[I2CDriver]] = {
    cls.kind: cls for cls in (INA219, MCP9808, LIS2MDL, LSM6DSOX, ADS1115)
}

__all__ = ["ADS1115", "DRIVERS", "INA219", "LIS2MDL", "LSM6DSOX", "MCP9808", "I2CDriver"]
