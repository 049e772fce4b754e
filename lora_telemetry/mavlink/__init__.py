"""The flight-controller side: MAVLink link (pymavlink) and vehicle-state aggregation.

``link`` (MavlinkLink: poll, heartbeat, stats) drives the others: ``urls`` (connection
strings), ``transport`` (opening, writing and reconnecting connections), ``tlog`` (robust log
reading), ``streams`` (stream-rate requests, sans-I/O) and ``state`` (the vehicle state).
``commands`` (flight commands per autopilot family and their COMMAND_ACK exchange, sans-I/O)
is driven by the drone node.
"""

# Installed by colcon as per-file symlinks: also look in the source directory, so modules
# added since the last build import without a rebuild.
from pathlib import Path as _Path

if str(_Path(__file__).resolve().parent) not in __path__:
    __path__.append(str(_Path(__file__).resolve().parent))
del _Path
