"""The drone side: configuration, uplink transmitters and the send loop the drone node runs.

Nothing here imports rclpy: the ROS 2 node (`lora_telemetry.nodes.drone_node`) only wires
parameters in and topics out, so the loop can be tested on a simulated clock.
"""

# Installed by colcon as per-file symlinks: also look in the source directory, so modules
# added since the last build import without a rebuild.
from pathlib import Path as _Path

if str(_Path(__file__).resolve().parent) not in __path__:
    __path__.append(str(_Path(__file__).resolve().parent))
del _Path
