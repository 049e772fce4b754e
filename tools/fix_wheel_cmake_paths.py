"""Point the ROS 2 wheels' exported Python include paths at this virtual environment.

The ``*__rosidl_generator_pyExport.cmake`` files in the ros-jazzy-* wheels name the include
directories of the machine that built them (``/opt/python/cp3XX-cp3XX/...``). CMake refuses a
non-existent INTERFACE_INCLUDE_DIRECTORIES entry, so a package that generates Python interfaces
against them fails to configure until the paths name this interpreter's headers and NumPy's.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy

FOREIGN = re.compile(r"/opt/python/[^;\"]*")


def replacement(path: str) -> str:
    if "numpy" in path:
        return numpy.get_include()
    if "/include/python" in path:
        return sysconfig.get_paths()["include"]
    raise SystemExit(f"unexpected foreign path in an exported CMake file: {path}")


def main(venv: str) -> int:
    changed = 0
    for cmake_file in Path(venv).glob("share/*/cmake/*__rosidl_generator_pyExport.cmake"):
        text = cmake_file.read_text()
        fixed = FOREIGN.sub(lambda m: replacement(m.group(0)), text)
        if fixed != text:
            cmake_file.write_text(fixed)
            changed += 1
    print(f"[setup] repaired {changed} exported CMake file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
