"""Shared pytest fixtures: where the project's byte-exact vectors and flight logs live."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# In CI, property tests use a fixed seed so a run is reproducible; locally they explore anew.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # bench/ (the fuzz harness, the shared test-data lookup)

from bench.common import testdata_dir as _testdata_dir  # noqa: E402
_DOMAIN_LOCK_DIR = Path(tempfile.gettempdir()) / "lora_telemetry_ros_domains"
_held_domain_lock = None  # kept open for the whole run: the lock is the reservation


def _reserve_ros_domain() -> int:
    """Reserve a ROS_DOMAIN_ID no other concurrent test run on this machine holds.

    DDS participants in the same domain discover each other, so two parallel runs sharing a
    domain would receive each other's /swarm/state. IDs 1-101 are valid for every participant
    count on Linux (REP-2000's port arithmetic); a flock per ID is released when we exit.
    """
    global _held_domain_lock
    _DOMAIN_LOCK_DIR.mkdir(exist_ok=True)
    for domain in range(1, 102):
        handle = open(_DOMAIN_LOCK_DIR / f"{domain}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _held_domain_lock = handle
        return domain
    raise RuntimeError("all ROS domain ids 1-101 are in use by other test runs")


def pytest_configure(config: pytest.Config) -> None:
    # Child processes (nodes, peers) inherit these.
    os.environ["ROS_DOMAIN_ID"] = str(_reserve_ros_domain())
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # never leave this machine
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="lora_telemetry_ros_log_"))


@pytest.fixture(scope="session")
def testdata_dir() -> Path:
    return _testdata_dir()


@pytest.fixture(scope="session")
def seed_vectors(testdata_dir: Path) -> dict:
    return json.loads((testdata_dir / "seed_vectors.json").read_text())


@pytest.fixture(scope="session")
def lorawan_vectors(testdata_dir: Path) -> dict:
    return json.loads((testdata_dir / "lorawan_vectors.json").read_text())


@pytest.fixture(scope="session")
def tlog_paths(testdata_dir: Path) -> list[Path]:
    return sorted((testdata_dir / "tlogs").glob("*.tlog"))
