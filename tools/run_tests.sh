#!/usr/bin/env bash
# Run every test in the environment tools/setup_env.sh built. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
set +u
source tools/env.sh
set -u
export LORA_TELEMETRY_REQUIRE_ROS=1  # a missing ROS 2 fails the run instead of skipping tests
exec python -m pytest "$@"
