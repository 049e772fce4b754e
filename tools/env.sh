# Source this file (bash) to use the environment tools/setup_env.sh built:
#   source tools/env.sh
# It activates .venv and overlays this package's install/ on ROS 2 Jazzy (system or wheels).
_lt_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_lt_venv="$(readlink -f "$_lt_root/.venv")"
if [ ! -f "$_lt_root/install/local_setup.bash" ]; then
  echo "lora_telemetry: not set up yet; run: make setup" >&2
  return 1 2>/dev/null || exit 1
fi
if [ -f /opt/ros/jazzy/setup.bash ]; then
  # shellcheck disable=SC1091
  source /opt/ros/jazzy/setup.bash
else
  # The wheels install ROS 2 into the venv's prefix; make it the underlay.
  export AMENT_PREFIX_PATH="$_lt_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export LD_LIBRARY_PATH="$_lt_venv/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export VIRTUAL_ENV="$_lt_venv"
export PATH="$_lt_venv/bin:$PATH"
# shellcheck disable=SC1091
source "$_lt_root/install/local_setup.bash"
# The package's executables (lora-telemetry, drone_node, ground_node), as `ros2 run` finds them.
export PATH="$_lt_root/install/lora_telemetry/lib/lora_telemetry:$PATH"
unset _lt_root _lt_venv
