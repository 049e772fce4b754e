"""Getting one telemetry payload onto the air as a LoRaWAN uplink, through a serial module.

Two ways, one interface:

* `RawUplinkTransmitter`: the core builds and secures the LoRaWAN frame (AES, MIC, our
  persisted counter) and the module sends it as a raw LoRa frame (`RawTransmit`). Works with
  every family, and the node controls every byte.
* `ModuleUplinkTransmitter`: the module's own LoRaWAN stack frames it (`ModuleLoRaWAN`, e.g.
  the RN2483's `mac tx`, as the thesis did); the node keeps the module's uplink counter in
  step with its persisted counter.

Both open the module lazily and can be reopened after an unplugged port or a module reset.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable

from lora_telemetry.core import lorawan as lw
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.core.regions import region_for_frequency
from lora_telemetry.keyfile import DeviceKeys
from lora_telemetry.radios import registry
from lora_telemetry.radios.base import (
    AbpSession, ModuleLoRaWAN, Radio, RadioError, RawReceive, RawTransmit, RxFrame,
)

LORAWAN_OVERHEAD = 13  # MHDR 1 + FHDR 7 + FPort 1 + MIC 4 (no FOpts)


@dataclass(frozen=True)
class UplinkReport:
    """One uplink that reached the air."""

    fcnt: int
    data: bytes  # the PHYPayload on the air
    airtime_s: float
    started: float
    finished: float


RadioFactory = Callable[[], Radio]


class UplinkTransmitter(abc.ABC):
    """Opens the module lazily (and again after a failure), and sends secured uplinks."""

    def __init__(self, radio_factory: RadioFactory, phy: PhySettings, keys: DeviceKeys) -> None:
        self._factory = radio_factory
        self.phy = phy
        self.keys = keys
        self.radio: Radio | None = None

    @property
    def is_open(self) -> bool:
        return self.radio is not None

    def open(self) -> None:
        """Open and configure the module (idempotent). Raises RadioError."""
        if self.radio is not None:
            return
        radio = self._factory()
        try:
            self._setup(radio)
        except BaseException:
            radio.close()
            raise
        self.radio = radio

    def close(self) -> None:
        radio, self.radio = self.radio, None
        if radio is not None:
            radio.close()

    def airtime_s(self, payload_len: int) -> float:
        return self.phy.time_on_air(payload_len + LORAWAN_OVERHEAD)

    def _frame(self, fport: int, payload: bytes, fcnt: int) -> bytes:
        return lw.build_data_frame(self.keys.devaddr, fcnt, payload, nwkskey=self.keys.nwkskey,
                                   appskey=self.keys.appskey, fport=fport)

    def _radio(self) -> Radio:
        if self.radio is None:
            raise RadioError("radio is not open")
        return self.radio

    def receive(self, timeout: float) -> RxFrame | None:
        """One raw frame heard within ``timeout`` (TDMA beacons); RadioError if the open
        module cannot receive."""
        radio = self._radio()
        if not isinstance(radio, RawReceive):
            raise RadioError(f"{radio.name} cannot receive raw LoRa frames")
        return radio.receive(timeout)

    @property
    def can_receive(self) -> bool:
        """Whether the open module can receive raw frames (False while closed)."""
        return isinstance(self.radio, RawReceive)

    def stats(self) -> dict[str, int | float]:
        """The open driver's counters (empty while closed)."""
        return dict(self.radio.stats()) if self.radio is not None else {}

    @abc.abstractmethod
    def _setup(self, radio: Radio) -> None:
        """Configure a freshly opened module."""

    @abc.abstractmethod
    def send(self, fport: int, payload: bytes, fcnt: int) -> UplinkReport:
        """Send one uplink with frame counter `fcnt`. Raises RadioError subclasses."""


class RawUplinkTransmitter(UplinkTransmitter):
    def _setup(self, radio: Radio) -> None:
        if not isinstance(radio, RawTransmit):
            raise RadioError(f"{radio.name} cannot send raw LoRa frames")
        radio.configure(self.phy)

    def send(self, fport: int, payload: bytes, fcnt: int) -> UplinkReport:
        radio = self._radio()
        assert isinstance(radio, RawTransmit)  # checked when it was opened
        frame = self._frame(fport, payload, fcnt)
        result = radio.send(frame)
        return UplinkReport(fcnt, frame, result.airtime_s, result.started, result.finished)


class ModuleUplinkTransmitter(UplinkTransmitter):
    """The module's own LoRaWAN stack, ABP on one channel (the thesis's end-node set-up)."""

    #: What the module itself enforces on the channel (10 %, as the thesis set the RN2483's
    #: dcycle to 9); the node's own ledger enforces the sub-band's legal limit on top.
    MODULE_DUTY_CYCLE = 0.1

    def __init__(self, radio_factory: RadioFactory, phy: PhySettings, keys: DeviceKeys,
                 *, next_fcnt: Callable[[], int]) -> None:
        super().__init__(radio_factory, phy, keys)
        self._next_fcnt = next_fcnt
        self.region = region = region_for_frequency(phy.frequency_hz)
        self.dr = region.dr_for(phy.sf, phy.bandwidth_hz)  # ConfigError if it is none
        # The region's TXPower index closest to the requested power (spec 7.1.3/7.4.3).
        want = phy.tx_power_dbm if phy.tx_power_dbm is not None else region.default_tx_power_dbm
        self.tx_power_index = min(region.tx_power_dbm,
                                  key=lambda i: abs(region.tx_power_dbm[i] - want))

    def _setup(self, radio: Radio) -> None:
        if not isinstance(radio, ModuleLoRaWAN):
            raise RadioError(f"{radio.name} has no LoRaWAN stack of its own; use lorawan_mode raw")
        radio.join_abp(AbpSession(
            region=self.region, frequency_hz=self.phy.frequency_hz, data_rate=self.dr,
            tx_power_index=self.tx_power_index, devaddr=self.keys.devaddr,
            nwkskey=self.keys.nwkskey, appskey=self.keys.appskey,
            duty_cycle=self.MODULE_DUTY_CYCLE, uplink_counter=self._next_fcnt()))

    def send(self, fport: int, payload: bytes, fcnt: int) -> UplinkReport:
        radio = self._radio()
        assert isinstance(radio, ModuleLoRaWAN)  # checked when it was opened
        if radio.uplink_counter != fcnt:
            radio.set_uplink_counter(fcnt)
        result = radio.send_uplink(fport, payload)
        # LoRaWAN framing is deterministic (keys, DevAddr, counter, payload; no FOpts/ADR here),
        # so this is the frame the module put on the air, for lora/tx and the statistics.
        frame = self._frame(fport, payload, fcnt)
        return UplinkReport(fcnt, frame, result.airtime_s, result.started, result.finished)


def radio_factory(radio_type: str, port: str, baud: int) -> RadioFactory:
    """A callable that opens the configured module (its driver imported on first use)."""
    spec = registry.module_family(radio_type)

    def make() -> Radio:
        return spec.open_serial(port, baud)
    return make
