"""Simulated vehicles speaking MAVLink: flight-log replay and synthetic ArduCopter swarms.

Two sources feed a MAVLink endpoint exactly as flight controllers would:

* **Log replay** (``replay``: :class:`LogReplayer` + :class:`ReplayTransform`): the records of
  a ``.tlog`` paced by their own timestamps, moved and re-addressed so that one log can stand
  for several UAVs.
* **Synthetic vehicles** (``trajectories``: :class:`SyntheticVehicle`, :func:`build_swarm`; and
  ``autopilot``: :class:`SimulatedAutopilot`, whose messages ``encoding`` builds): N copters
  flying a circle, a lawnmower survey or a formation through an ArduCopter mission, answering
  stream requests as the firmware does.

``simulator`` (:class:`VehicleSimulator`) is the I/O shell that runs either in real time; the
other modules are sans-I/O. Every module logs as ``lora_telemetry.sim.vehicle``, the name this
package had as one module, so log filters keep working.
"""

from lora_telemetry.sim.vehicle.autopilot import DEFAULT_SIM_RATES_HZ, SYSTEM_TIME_DELAY, SimulatedAutopilot
from lora_telemetry.sim.vehicle.replay import (
    LogReference,
    LogReplayer,
    ReplayTransform,
    find_log_reference,
)
from lora_telemetry.sim.vehicle.simulator import VehicleSimulator, medium_position_sink
from lora_telemetry.sim.vehicle.trajectories import (
    PATTERNS,
    CirclePath,
    OffsetPath,
    PolylinePath,
    SyntheticVehicle,
    VehicleTruth,
    build_swarm,
)

__all__ = [
    "PATTERNS",
    "DEFAULT_SIM_RATES_HZ",
    "VehicleTruth",
    "CirclePath",
    "PolylinePath",
    "OffsetPath",
    "SyntheticVehicle",
    "build_swarm",
    "SimulatedAutopilot",
    "SYSTEM_TIME_DELAY",
    "LogReference",
    "find_log_reference",
    "ReplayTransform",
    "LogReplayer",
    "VehicleSimulator",
    "medium_position_sink",
]

# Installed by colcon as per-file symlinks: also look in the source directory, so modules
# added since the last build import without a rebuild.
from pathlib import Path as _Path  # noqa: E402

if str(_Path(__file__).resolve().parent) not in __path__:
    __path__.append(str(_Path(__file__).resolve().parent))
del _Path
