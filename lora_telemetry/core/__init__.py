"""Sans-I/O protocol core: pure functions and state machines over bytes.

Nothing here performs I/O, reads a clock or imports ROS: time is always an argument.
"""

# Installed by colcon as per-file symlinks: also look in the source directory, so modules
# added since the last build import without a rebuild.
from pathlib import Path as _Path

if str(_Path(__file__).resolve().parent) not in __path__:
    __path__.append(str(_Path(__file__).resolve().parent))
del _Path
