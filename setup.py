"""Pure-Python install of lora_telemetry: `pip install .` gives the library and the
`lora-telemetry` command without ROS. The ROS 2 package (generated messages, nodes, launch
files) is built with colcon from package.xml/CMakeLists.txt instead."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def _requirements(name: str) -> list[str]:
    lines = (HERE / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


setup(
    name="lora_telemetry",
    version="0.1.0",
    description="UAV swarm telemetry over LoRa (LoRaWAN 1.0) to ROS 2",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["lora_telemetry", "lora_telemetry.*"]),
    install_requires=_requirements("requirements.txt"),
    extras_require={
        "test": _requirements("requirements-dev.txt"),
        "gateway": ["spidev>=3.6", "gpiod>=2.0"],
    },
    entry_points={"console_scripts": ["lora-telemetry = lora_telemetry.cli.main:main"]},
)
