"""`pip install .` gives the pure-Python library and the CLI in a plain venv without ROS."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_pip_install_gives_cli_without_ros(tmp_path: Path) -> None:
    env_dir = tmp_path / "plain"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # Install from a copy so the build never writes into the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "README.md", "MANIFEST.in", "requirements.txt",
                 "requirements-dev.txt", "lora_telemetry"):
        subprocess.run(["cp", "-rL", str(REPO / name), str(src / name)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(src)],
                   check=True, timeout=600)
    cli = env_dir / "bin" / "lora-telemetry"
    out = subprocess.run([str(cli), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage: lora-telemetry" in out.stdout
    # Really without ROS: the plain venv cannot import rclpy.
    probe = subprocess.run([str(py), "-c", "import rclpy"], capture_output=True, text=True)
    assert probe.returncode != 0 and "rclpy" in probe.stderr
