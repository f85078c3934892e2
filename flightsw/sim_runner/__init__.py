"""A flight Satellite flying through the simulated world: one scenario run, measured and reported.

Why one composition package: `flightsw sim --scenario` must exercise the code that flies (the real
components, drivers, serial link and ground protocol) while the orbit, power, thermal and contact
models of `sim.environment` decide what the sensors read and when the radio gets through. This
package is the only place that knows both sides:

- the World is built from the scenario (start, orbit, stations, battery, seed) and served to the
  simulated I2C parts through `WorldEnvironment` (given to the hardware builder as its
  environment source), so the INA219s, thermometers, magnetometer, gyro and sun sensors read it;
- the simulated transceiver's channel gets a `ContactGate` (frames pass only during passes, with
  the pass's bit error rate), and its radio power state feeds the World's power model;
- a world ticker, the scenario's fault timeline, a ground-side KISS client (counting beacons and
  data per contact, sending one no-op command per pass) and a metrics sampler run as supervised
  services of the satellite;
- spacecraft UTC comes from the World, so every stamp is the simulated epoch.

Reboots: the simulated watchdog bites when the health monitor stops petting (a hung rate group,
see the scenario's `hang` fault). The board resets: the runner powers the old flight software
off (its tasks are gone, its serial port and buses closed, nothing flushed), waits the boot
time and builds a new Satellite on the same data directory, which boots with reset reason
UNEXPECTED. The World, the transceiver, the ground client, the fault timeline and the sampler are
the runner's own supervised services and live through the reset, as the orbit, the radio and
the ground station do.

Time: the run uses a `VirtualTimeLoop` (``speed=None`` as fast as possible, ``N`` at most N times
real time). Bytes crossing the pseudo-terminal and the TCP socket arrive asynchronously in the
kernel, so the runner tells the loop how many bytes were written but are not readable at the far
end yet, and the loop waits for them before every poll: bytes written in one loop iteration are
read in the next, whatever the kernel's timing. This is what makes a run with a given seed
repeat exactly.

Modules: `options` (what is asked for), `runner` (`SimulationRun`: composition, the reset
sequence, metrics, report), `reboots` (which boot created each task), `io_accounting` (bytes the
virtual-time loop waits for), `ground` (the ground-side KISS client and CFDP receiver), `metrics`
(passes and radio figures), `results` (`SimResult` and the comparison of two runs).
"""

from flightsw.sim_runner.ground import GroundFileReceiver, GroundMonitor
from flightsw.sim_runner.options import SimOptions, SimulationError, as_seconds
from flightsw.sim_runner.results import (
    HOST_METRICS,
    BootRecord,
    ContactTally,
    SimResult,
    first_difference,
)
from flightsw.sim_runner.runner import SimulationRun, run_scenario

__all__ = ["first_difference", "BootRecord", "GroundFileReceiver", "GroundMonitor", "SimOptions", "SimResult", "SimulationError",
           "SimulationRun", "run_scenario", "ContactTally", "HOST_METRICS", "as_seconds"]
