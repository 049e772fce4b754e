"""Getting one telemetry payload onto the air as a LoRaWAN uplink, through a serial module.

Two ways, one interface:

* `RawUplinkTransmitter`: the core builds and secures the LoRaWAN frame (AES, MIC, our
  persisted counter) and the module sends it as a raw LoRa frame (RN2483 `radio tx`, EByte
  AIR_PKT). Works with every module, and the node controls every byte.
* `ModuleUplinkTransmitter`: the RN2483's own LoRaWAN stack frames it (`mac tx`), as the
  thesis did; the node keeps the module's upctr in step with its persisted counter.

Both open the module lazily and can be reopened after an unplugged port or a module reset.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable

from lora_telemetry.core import lorawan as lw
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.core.regions import get_region
from lora_telemetry.keyfile import DeviceKeys
from lora_telemetry.radios.base import Radio, RadioError

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

    @abc.abstractmethod
    def _setup(self, radio: Radio) -> None:
        """Configure a freshly opened module."""

    @abc.abstractmethod
    def send(self, fport: int, payload: bytes, fcnt: int) -> UplinkReport:
        """Send one uplink with frame counter `fcnt`. Raises RadioError subclasses."""


class RawUplinkTransmitter(UplinkTransmitter):
    def _setup(self, radio: Radio) -> None:
        radio.configure(self.phy)

    def send(self, fport: int, payload: bytes, fcnt: int) -> UplinkReport:
        frame = self._frame(fport, payload, fcnt)
        result = self._radio().send(frame)
        return UplinkReport(fcnt, frame, result.airtime_s, result.started, result.finished)


class ModuleUplinkTransmitter(UplinkTransmitter):
    """RN2483 `mac` stack, ABP on one channel (thesis end-node set-up)."""

    def __init__(self, radio_factory: RadioFactory, phy: PhySettings, keys: DeviceKeys,
                 *, next_fcnt: Callable[[], int]) -> None:
        super().__init__(radio_factory, phy, keys)
        self._next_fcnt = next_fcnt
        self.band = 433 if phy.frequency_hz < 500_000_000 else 868
        region = get_region("EU433" if self.band == 433 else "EU868")
        matches = [dr for dr, rate in region.data_rates.items()
                   if rate.is_lora and rate.sf == phy.sf and rate.bandwidth_hz == phy.bandwidth_hz]
        if not matches:
            raise RadioError(f"SF{phy.sf}/{phy.bandwidth_hz} Hz is no LoRaWAN data rate of {region.name}")
        self.dr = matches[0]
        # pwridx: the region's TXPower index closest to the requested power (spec 7.1.3/7.4.3).
        want = phy.tx_power_dbm if phy.tx_power_dbm is not None else region.default_tx_power_dbm
        self.pwridx = min(region.tx_power_dbm, key=lambda i: abs(region.tx_power_dbm[i] - want))

    def _setup(self, radio: Radio) -> None:
        # dcycle 9 = 10 % (100/(X+1) %, command reference 2.4.8.19.2) as the thesis set it;
        # the node's own ledger enforces the legal limit of the sub-band on top.
        radio.lorawan_setup(  # type: ignore[attr-defined]
            self.band, self.phy.frequency_hz, self.dr, self.pwridx, self.keys.devaddr,
            self.keys.nwkskey, self.keys.appskey, dcycle=9, upctr=self._next_fcnt(), save=False,
        )

    def send(self, fport: int, payload: bytes, fcnt: int) -> UplinkReport:
        radio = self._radio()
        if radio.upctr != fcnt:  # type: ignore[attr-defined]
            radio.mac_set_upctr(fcnt)  # type: ignore[attr-defined]
        result = radio.mac_tx(fport, payload)  # type: ignore[attr-defined]
        # LoRaWAN framing is deterministic (keys, DevAddr, counter, payload; no FOpts/ADR here),
        # so this is the frame the module put on the air, for lora/tx and the statistics.
        frame = self._frame(fport, payload, fcnt)
        return UplinkReport(fcnt, frame, result.airtime_s, result.started, result.finished)


def radio_factory(radio_type: str, port: str, baud: int) -> RadioFactory:
    """A callable that opens the configured module (drivers imported lazily)."""
    def make() -> Radio:
        if radio_type == "rn2483":
            from lora_telemetry.radios.rn2483 import RN2483Radio
            return RN2483Radio(port, baud)
        from lora_telemetry.radios.ebyte import EByteRadio
        return EByteRadio(port, baud)
    return make
