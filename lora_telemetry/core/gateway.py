"""The ground gateway's frame pipeline: from received bytes to an accepted telemetry sample.

For each frame: CRC verdict from the radio, LoRaWAN parse, device look-up by DevAddr, MIC
check with the reconstructed 32-bit counter, replay/duplicate rejection, decryption, codec
decode. Every frame gets exactly one verdict (`status`), and per-device counters feed the
`LinkStats` topic. Pure: receive times are passed in; the ground node only wires I/O to it.

Counters across restarts: the caller restores each device's last accepted counter
(:meth:`Gateway.restore_counter`, from persist.GroundCounterStore) and must make every
verdict that :attr:`Verdict.advanced` a counter durable before it publishes the frame.

First contact: a device without any stored counter whose counter is already past 65,535
(the air carries only its low 16 bits, section 4.3.1.5) would never verify with upper bits 0.
Before its first accepted frame the gateway therefore also tries the next
``FIRST_CONTACT_SEARCH`` values of the upper 16 bits (up to 16.7 M frames, half a year at
1 Hz) for a frame whose MIC fails at 0: at most that many extra CMACs per frame, and only
until the device has been heard once.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core import lorawan as lw
from lora_telemetry.core import saturation
from lora_telemetry.core.errors import ConfigError, LoraTelemetryError

# Verdicts, in the order the pipeline can reach them.
ACCEPTED = "accepted"
CRC_ERROR = "crc_error"
MALFORMED = "malformed"
NOT_UPLINK = "not_uplink"
UNKNOWN_DEVADDR = "unknown_devaddr"
MIC_FAILED = "mic_failed"
DUPLICATE = "duplicate"
REPLAY = "replay"
OUT_OF_WINDOW = "out_of_window"
DECODE_ERROR = "decode_error"
STATUSES = (ACCEPTED, CRC_ERROR, MALFORMED, NOT_UPLINK, UNKNOWN_DEVADDR, MIC_FAILED,
            DUPLICATE, REPLAY, OUT_OF_WINDOW, DECODE_ERROR)

#: Unregistered DevAddrs remembered (for "reported once per address" and diagnostics). Anyone
#: in range can send frames with random addresses, so the table is bounded: the least recently
#: heard address is forgotten first (and would be reported again if it comes back).
MAX_UNKNOWN_DEVADDRS = 256
#: Upper-16-bit values tried for a device's first frame when no counter is stored (see above).
FIRST_CONTACT_SEARCH = 255
#: Authentic frames in a row with old counters after which the gateway says why.
COUNTER_WENT_BACK_AFTER = 3


@dataclass(frozen=True)
class Device:
    """One registered UAV: its radio identity, keys and how its telemetry is encoded."""

    name: str
    devaddr: int
    nwkskey: bytes = field(repr=False)
    appskey: bytes = field(repr=False)
    codec: tcodec.CodecConfig
    system_id: int = 0


@dataclass
class LinkCounters:
    """What the gateway knows about one device's link since it started."""

    received: int = 0
    lost: int = 0
    duplicates: int = 0
    replays: int = 0
    out_of_window: int = 0
    mic_failures: int = 0
    decode_errors: int = 0
    rssi_sum: float = 0.0
    snr_sum: float = 0.0
    radio_n: int = 0
    latency_sum: float = 0.0
    latency_n: int = 0
    last_fcnt32: int | None = None
    last_rx_time: float | None = None
    #: authentic frames with an old counter since the last accepted one (a drone whose
    #: counter went back: its state file lost, or a replayer)
    replays_in_a_row: int = 0
    #: the newest such counter
    last_replayed_fcnt32: int | None = None
    #: accepted samples with a value beyond the frame's range (core/saturation.py)
    saturated_samples: int = 0
    saturated_by_field: dict[str, int] = field(default_factory=dict)
    #: receive time and explanation of the newest such sample
    last_saturated_time: float | None = None
    saturation_notes: tuple[str, ...] = ()

    @property
    def delivery_ratio(self) -> float:
        total = self.received + self.lost
        return self.received / total if total else math.nan

    @property
    def mean_rssi_dbm(self) -> float:
        return self.rssi_sum / self.radio_n if self.radio_n else math.nan

    @property
    def mean_snr_db(self) -> float:
        return self.snr_sum / self.radio_n if self.radio_n else math.nan

    @property
    def mean_latency_s(self) -> float:
        return self.latency_sum / self.latency_n if self.latency_n else math.nan

    def age_s(self, now: float) -> float:
        return math.inf if self.last_rx_time is None else max(0.0, now - self.last_rx_time)


@dataclass(frozen=True)
class Verdict:
    """The outcome for one received frame."""

    status: str
    detail: str = ""
    devaddr: int | None = None
    device: Device | None = None
    fcnt32: int | None = None
    fport: int | None = None
    sample: tcodec.TelemetrySample | None = None
    latency_s: float | None = None
    #: True the first time an unknown DevAddr is seen (report once per address, not per frame)
    first_report: bool = False

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED

    @property
    def advanced(self) -> bool:
        """True when this frame moved its device's counter (authentic and new, whether or not
        its payload decoded): the new counter must be durable before the frame is used."""
        return self.status in (ACCEPTED, DECODE_ERROR)


class Gateway:
    """Verifies and decodes uplinks for a registry of devices."""

    def __init__(self, devices: Iterable[Device]) -> None:
        self.devices: dict[int, Device] = {}
        for d in devices:
            if d.devaddr in self.devices:
                raise ConfigError(
                    f"DevAddr {lw.format_dev_addr(d.devaddr)} registered twice "
                    f"({self.devices[d.devaddr].name!r} and {d.name!r})"
                )
            self.devices[d.devaddr] = d
        self.trackers = {a: lw.FrameCounterTracker(a) for a in self.devices}
        self.links = {d.name: LinkCounters() for d in self.devices.values()}
        #: unregistered address -> frames seen, least recently heard first (bounded)
        self.unknown_devaddrs: OrderedDict[int, int] = OrderedDict()
        #: unregistered addresses dropped from the table to keep it bounded
        self.unknown_devaddrs_forgotten = 0
        self.totals: dict[str, int] = {s: 0 for s in STATUSES}

    def _done(self, verdict: Verdict) -> Verdict:
        self.totals[verdict.status] += 1
        return verdict

    def restore_counter(self, devaddr: int, last_fcnt32: int | None) -> None:
        """Continue a device's session from a stored counter (None: a new session)."""
        device = self.devices.get(devaddr)
        if device is None:
            raise ConfigError(f"DevAddr {lw.format_dev_addr(devaddr)} is not registered")
        self.trackers[devaddr] = lw.FrameCounterTracker(devaddr, last_fcnt32=last_fcnt32)
        self.links[device.name].last_fcnt32 = last_fcnt32

    def _first_contact(self, frame: lw.DataFrame, device: Device) -> lw.FCntCandidate | None:
        """A device never heard: the counter whose MIC verifies, upper 16 bits 1..N."""
        for upper in range(1, FIRST_CONTACT_SEARCH + 1):
            fcnt32 = (upper << 16) | frame.fcnt
            if lw.verify_mic(frame, device.nwkskey, fcnt32):
                return lw.FCntCandidate(frame.fcnt, fcnt32, lw.FCntStatus.NEW, 0, None)
        return None

    def _note_unknown(self, addr: int) -> int:
        """Count a frame of an unregistered address; returns how many were seen before."""
        table = self.unknown_devaddrs
        seen = table.pop(addr, 0)
        if not seen and len(table) >= MAX_UNKNOWN_DEVADDRS:
            table.popitem(last=False)
            self.unknown_devaddrs_forgotten += 1
        table[addr] = seen + 1
        return seen

    def most_frequent_unknown(self, n: int = 8) -> list[tuple[int, int]]:
        """The `n` unregistered addresses heard most often: (address, frames)."""
        return sorted(self.unknown_devaddrs.items(), key=lambda kv: -kv[1])[:n]

    def process(self, data: bytes, *, crc_ok: bool, rx_time: float,
                rssi_dbm: float | None = None, snr_db: float | None = None,
                airtime_s: float = 0.0) -> Verdict:
        """Judge one received frame. `rx_time` is the wall-clock end of reception."""
        if not crc_ok:
            return self._done(Verdict(CRC_ERROR, "payload CRC failed"))
        try:
            frame = lw.parse_phy_payload(bytes(data))
        except LoraTelemetryError as exc:
            return self._done(Verdict(MALFORMED, str(exc)))
        if not isinstance(frame, lw.DataFrame) or not frame.uplink:
            name = lw.MTYPE_NAMES[frame.mhdr.mtype]
            return self._done(Verdict(NOT_UPLINK, f"{name} frames are not telemetry"))
        addr = frame.dev_addr
        device = self.devices.get(addr)
        if device is None:
            seen = self._note_unknown(addr)
            return self._done(Verdict(UNKNOWN_DEVADDR, f"DevAddr {frame.dev_addr_hex} is not registered",
                                      devaddr=addr, first_report=seen == 0))
        link = self.links[device.name]
        tracker = self.trackers[addr]
        cand = tracker.check(frame.fcnt)
        if not lw.verify_mic(frame, device.nwkskey, cand.fcnt32):
            found = self._first_contact(frame, device) if tracker.last_fcnt32 is None else None
            if found is None:
                link.mic_failures += 1
                return self._done(Verdict(MIC_FAILED, f"MIC does not verify (FCnt {cand.fcnt32})",
                                          devaddr=addr, device=device, fcnt32=cand.fcnt32))
            cand = found
        if not tracker.accept(cand):
            status = {lw.FCntStatus.DUPLICATE: DUPLICATE, lw.FCntStatus.REPLAY: REPLAY}.get(
                cand.status, OUT_OF_WINDOW)
            if status == DUPLICATE:
                link.duplicates += 1
            elif status == REPLAY:
                link.replays += 1
                link.replays_in_a_row += 1
                link.last_replayed_fcnt32 = cand.fcnt32
            else:
                link.out_of_window += 1
            return self._done(Verdict(status, f"FCnt {cand.fcnt32} after {cand.basis}",
                                      devaddr=addr, device=device, fcnt32=cand.fcnt32))
        # Authentic and new: the counter has advanced, whatever the payload turns out to be.
        link.replays_in_a_row = 0
        link.received += 1
        link.lost += cand.lost
        link.last_fcnt32 = cand.fcnt32
        link.last_rx_time = rx_time
        if rssi_dbm is not None and snr_db is not None:
            link.rssi_sum += rssi_dbm
            link.snr_sum += snr_db
            link.radio_n += 1
        try:
            if frame.fport is None:
                raise tcodec.CodecError("frame has no FPort, so no telemetry")
            payload = lw.decrypt_frame_payload(frame, nwkskey=device.nwkskey,
                                               appskey=device.appskey, fcnt32=cand.fcnt32)
            sample = tcodec.decode(frame.fport, payload or b"", device.codec, rx_time)
        except LoraTelemetryError as exc:
            link.decode_errors += 1
            return self._done(Verdict(DECODE_ERROR, str(exc), devaddr=addr, device=device,
                                      fcnt32=cand.fcnt32, fport=frame.fport))
        wrong = saturation.significant(sample.saturated)
        if wrong:
            link.saturated_samples += 1
            for name in wrong:
                link.saturated_by_field[name] = link.saturated_by_field.get(name, 0) + 1
            link.last_saturated_time = rx_time
            link.saturation_notes = tuple(saturation.describe_received(sample, device.codec))
        latency = rx_time - sample.time_unix_s
        link.latency_sum += latency
        link.latency_n += 1
        return self._done(Verdict(ACCEPTED, "", devaddr=addr, device=device, fcnt32=cand.fcnt32,
                                  fport=frame.fport, sample=sample, latency_s=latency))
