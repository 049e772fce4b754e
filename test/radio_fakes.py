"""A base for the tests' simulated-clock radios: what every RawRadio needs besides send and
receive (the PHY it was given, and no-op close/reconnect/stats). Subclasses model the air."""

from __future__ import annotations

from lora_telemetry.core.phy import PhySettings
from lora_telemetry.radios.base import RawRadio


class FakeRawRadio(RawRadio):
    name = "fake"
    _phy: PhySettings | None = None

    @property
    def phy(self) -> PhySettings | None:
        return self._phy

    def configure(self, phy: PhySettings) -> None:
        self._phy = phy

    def close(self) -> None:
        pass

    def reconnect(self, timeout: float = 10.0) -> None:
        pass

    def stats(self) -> dict[str, int]:
        return {}
