"""Emulator of an EByte 433 MHz UART LoRa module with the custom firmware.

Use::

    from lora_telemetry.sim.ebyte_emulator import EByteEmulator
    from lora_telemetry.sim.medium import MediumClient

    client = MediumClient(node_id="uav1", hub=("127.0.0.1", 47100))
    emu = EByteEmulator("uav1", "/tmp/lora_sim/uav1.tty", client)   # link_path None: default
    threading.Thread(target=emu.serve_forever, daemon=True).start()  # or run it in main
    ...  # a driver opens emu.path (the stable symlink) like /dev/ttyUSB0
    emu.stop(); emu.close()                                          # close() removes the link

`EByteEmulator(name, link_path=None, medium_client=None, *, module_name=..., loracore_name=...,
tx_power_dbm=None, boot_announce=True, lbt_timeout_s=2.0, inter_byte_timeout=0.1)`:
``link_path`` defaults to ``$LORA_TELEMETRY_SIM_DIR/<name>.tty`` (/tmp/lora_sim/<name>.tty);
``medium_client`` is a `sim.medium.MediumClient` (or None: transmissions only take their time
on air, nothing is received). The caller owns the client and closes it.

Fault injection (thread-safe, callable while `serve_forever` runs in another thread):
``inject_garbage(data=None)``, ``reset(during_next_tx=False)`` (spontaneous restart, now or
just after the next transmission started), ``drop_answers(n=1)`` (the next n frames to the
host are lost), ``unplug()`` / ``replug()`` (the USB adapter, which also
powers the module: replug is a power-on), ``set_channel_rssi(dbm)`` (what GET_RSSI and listen
before talk see; None = the thermal noise floor).

Behaviour (the seed: ../shared/seeds/ebyte-custom-firmware-protocol.md, and its capture):

* power-on: REQ_LORA_MODES ("Request from the module for the SET_LORA_MODES_CMD command before
  any radio operation"), nothing configured. A host that opens the port later never sees it
  (pyserial flushes input on open), like the capture's host, which starts with SET_LORA_MODES;
* SET_LORA_MODES -> REQ_LORA_PARAMS; SET_LORA_PARAMS -> radio on, receiving -> REQ_AIR_PKT
  (the capture's order);
* AIR_PKT from the host -> on the air with the configured PhySettings for its time on air,
  then receiving again -> REQ_AIR_PKT ("ready to transmit a packet from the host");
* a frame heard on the air -> AIR_PKT to the host with the medium's RSSI (int16 LE) and
  SNR (int8), rounded to whole dB as the firmware's integer fields are;
* GET_RSSI -> SET_RSSI (only once the radio is initialised, as the seed says); SET_RSSI from
  the host sets the listen-before-talk threshold; GET_MODULE_NAME / GET_LORACORE_NAME ->
  their responses.

Assumptions where the seed is silent (each counted in `counters`): an AIR_PKT before the
radio is configured is dropped and the missing configuration requested again; an AIR_PKT
while still transmitting is dropped; SET_LORA_PARAMS outside 410-525 MHz (or SF5, which
PhySettings cannot express) is ignored, so no REQ_AIR_PKT follows; with CRC on, frames with a
bad CRC are not passed to the host; in implicit mode only frames of the programmed length,
CRC setting and coding rate are decodable; a transmission blocked by listen before talk is
retried until the channel is clear or dropped after ``lbt_timeout_s``.
"""

from __future__ import annotations

import logging
import math
import os
import select
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar, Union

from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.radios.ebyte.protocol import (
    EBYTE_433_BAND_HZ,
    AirPacketFromHost,
    AirPacketFromModule,
    FrameParser,
    GetLoraCoreName,
    GetModuleName,
    GetRssi,
    LoraCoreName,
    Message,
    ModuleName,
    ReqAirPkt,
    ReqLoraModes,
    ReqLoraParams,
    Sender,
    SetLoraModes,
    SetLoraParams,
    SetRssi,
    check_frequency,
    nominal_power_dbm,
    phy_from_messages,
)
from lora_telemetry.sim.medium_model import MediumParams
from lora_telemetry.sim.pty_port import DEFAULT_PTY_DIR, PtyPort

__all__ = [
    "EByteEmulator", "EByteModuleLogic", "ToHost", "Transmit", "Listen", "Standby",
    "DEFAULT_MODULE_NAME", "DEFAULT_LORACORE_NAME", "noise_floor_dbm",
]

log = logging.getLogger(__name__)

#: The seed's examples: "for example `e32-433t30d-10010-v6.2`", "for example `SX1278`".
DEFAULT_MODULE_NAME = "e32-433t30d-10010-v6.2"
DEFAULT_LORACORE_NAME = "SX1278"
_TX_DONE_GRACE_S = 1.0  # a medium that never reports TxDone must not wedge the module
_LBT_RETRY_S = 0.01
_HOST_WRITE_TIMEOUT_S = 0.5  # a host that stops reading loses bytes, like a real UART
_MAX_WAIT_S = 0.1


_DEFAULT_MEDIUM = MediumParams()


def noise_floor_dbm(bandwidth_hz: int) -> float:
    """The quiet channel's RSSI: the medium model's default noise floor (-174 dBm/Hz +
    10 log10(BW) + NF), so GET_RSSI agrees with the SNRs the medium reports."""
    return _DEFAULT_MEDIUM.noise_floor_dbm(bandwidth_hz)


# --- sans-I/O module logic ----------------------------------------------------------------


@dataclass(frozen=True)
class ToHost:
    """Bytes the module writes on its UART."""

    data: bytes


@dataclass(frozen=True)
class Transmit:
    data: bytes
    phy: PhySettings


@dataclass(frozen=True)
class Listen:
    phy: PhySettings


@dataclass(frozen=True)
class Standby:
    pass


Action = Union[ToHost, Transmit, Listen, Standby]


def _clamp_round(value: float, lo: int, hi: int) -> int:
    if not math.isfinite(value):
        return lo
    return max(lo, min(hi, int(round(value))))


class EByteModuleLogic:
    """The firmware's behaviour as a state machine: events in, `Action`s out, time passed in.

    States: ``off`` (not powered), ``wait_modes``, ``wait_params``, ``rx``, ``lbt`` (a packet
    waits for a clear channel), ``tx``.
    """

    def __init__(
        self,
        module_name: str = DEFAULT_MODULE_NAME,
        loracore_name: str = DEFAULT_LORACORE_NAME,
        *,
        band_hz: tuple[int, int] = EBYTE_433_BAND_HZ,
        lbt_timeout_s: float = 2.0,
        medium_timing: bool = False,
    ) -> None:
        ModuleName(module_name).encode()  # validate now, not at the first GET_MODULE_NAME
        LoraCoreName(loracore_name).encode()
        self.module_name = module_name
        self.loracore_name = loracore_name
        self.band_hz = band_hz
        self.lbt_timeout_s = lbt_timeout_s
        #: True: a transmission ends with `on_tx_done` (the medium's TxDoneEvent); False: when
        #: its time on air has passed.
        self.medium_timing = medium_timing
        self.parser = FrameParser(Sender.HOST)
        self.counters: Counter[str] = Counter()
        self.channel_rssi_dbm: float | None = None
        self._power_off()

    def _power_off(self) -> None:
        self.state = "off"
        self.modes: SetLoraModes | None = None
        self.params: SetLoraParams | None = None
        self.phy: PhySettings | None = None
        self.rssi_threshold: int | None = None
        self._tx_end: float | None = None
        self._lbt: tuple[bytes, float] | None = None
        self.parser.reset()

    # -- events --

    def boot(self, now: float) -> list[Action]:
        """Power-on: everything forgotten; ask for SET_LORA_MODES."""
        self._power_off()
        self.state = "wait_modes"
        self.counters["boots"] += 1
        return [Standby(), ToHost(ReqLoraModes().encode())]

    def power_off(self) -> list[Action]:
        self._power_off()
        return [Standby()]

    def feed(self, data: bytes, now: float) -> list[Action]:
        """Bytes from the host's UART."""
        if self.state == "off":
            return []
        actions: list[Action] = []
        for msg in self.parser.feed(data):
            actions += self._on_message(msg, now)
        return actions

    def stalled(self, now: float) -> list[Action]:
        """The host stopped mid-frame: give the partial frame up."""
        actions: list[Action] = []
        for msg in self.parser.resync():
            actions += self._on_message(msg, now)
        return actions

    def on_rx(self, data: bytes, phy: PhySettings, rssi_dbm: float, snr_db: float,
              crc_ok: bool, now: float) -> list[Action]:
        """A frame the medium delivered (we were listening for all of it)."""
        if self.state != "rx" or self.phy is None or self.modes is None:
            self.counters["rx_not_listening"] += 1
            return []
        ours = self.phy
        if phy.explicit_header != ours.explicit_header:
            self.counters["rx_header_mode_mismatch"] += 1
            return []
        crc_on = phy.crc_on
        if not ours.explicit_header:
            # Implicit header: length, CRC and coding rate are not on the air; the receiver's
            # own settings must match the sender's or the frame cannot be decoded.
            if (len(data) != self.modes.packet_length or phy.crc_on != ours.crc_on
                    or phy.coding_rate != ours.coding_rate):
                self.counters["rx_implicit_mismatch"] += 1
                return []
            crc_on = ours.crc_on
        if crc_on and not crc_ok:
            self.counters["rx_crc_error"] += 1
            return []
        if not 1 <= len(data) <= 255:
            self.counters["rx_bad_length"] += 1
            return []
        self.counters["rx_frames"] += 1
        pkt = AirPacketFromModule(bytes(data), _clamp_round(rssi_dbm, -32768, 32767),
                                  _clamp_round(snr_db, -128, 127))
        return [ToHost(pkt.encode())]

    def on_tx_done(self, now: float) -> list[Action]:
        if self.state != "tx" or self.phy is None:
            return []  # e.g. a restart happened while the frame was on the air
        self.state, self._tx_end = "rx", None
        self.counters["tx_frames"] += 1
        return [Listen(self.phy), ToHost(ReqAirPkt().encode())]

    def poll(self, now: float) -> list[Action]:
        """Timers: end of a transmission, listen-before-talk retries."""
        if self.state == "tx" and self._tx_end is not None:
            end = self._tx_end + (_TX_DONE_GRACE_S if self.medium_timing else 0.0)
            if now >= end:
                if self.medium_timing:
                    self.counters["tx_done_missing"] += 1
                return self.on_tx_done(now)
        if self.state == "lbt" and self._lbt is not None:
            data, since = self._lbt
            if not self._channel_busy():
                self._lbt = None
                return self._start_tx(data, now)
            if now - since >= self.lbt_timeout_s:
                self._lbt = None
                self.state = "rx"
                self.counters["lbt_dropped"] += 1
                return [ToHost(ReqAirPkt().encode())]
        return []

    def next_deadline(self, now: float) -> float | None:
        """When `poll` next has something to do (None: only events can change anything)."""
        if self.state == "tx" and self._tx_end is not None:
            return self._tx_end + (_TX_DONE_GRACE_S if self.medium_timing else 0.0)
        if self.state == "lbt" and self._lbt is not None:
            return now + _LBT_RETRY_S
        return None

    def current_rssi_dbm(self) -> float:
        if self.channel_rssi_dbm is not None:
            return self.channel_rssi_dbm
        bandwidth = self.phy.bandwidth_hz if self.phy is not None else 125000
        return noise_floor_dbm(bandwidth)

    # -- internals --

    def _channel_busy(self) -> bool:
        return self.rssi_threshold is not None and self.current_rssi_dbm() > self.rssi_threshold

    def _start_tx(self, data: bytes, now: float) -> list[Action]:
        assert self.phy is not None
        self.state = "tx"
        self._tx_end = now + self.phy.time_on_air(len(data))
        return [Transmit(data, self.phy)]

    def _on_message(self, msg: Message, now: float) -> list[Action]:
        if isinstance(msg, SetLoraModes):
            self.modes, self.params, self.phy = msg, None, None
            self.state, self._tx_end, self._lbt = "wait_params", None, None
            return [Standby(), ToHost(ReqLoraParams().encode())]
        if isinstance(msg, SetLoraParams):
            if self.modes is None:
                self.counters["params_without_modes"] += 1
                return [ToHost(ReqLoraModes().encode())]
            try:
                check_frequency(msg.frequency_hz, self.band_hz)
                phy = phy_from_messages(self.modes, msg)
            except ConfigError as exc:
                self.counters["rejected_params"] += 1
                log.warning("EByte emulator: SET_LORA_PARAMS ignored: %s", exc)
                return []
            self.params, self.phy = msg, phy
            self.state, self._tx_end, self._lbt = "rx", None, None
            return [Listen(phy), ToHost(ReqAirPkt().encode())]
        if isinstance(msg, AirPacketFromHost):
            if self.state in ("wait_modes", "wait_params"):
                self.counters["tx_unconfigured"] += 1
                request = ReqLoraModes() if self.state == "wait_modes" else ReqLoraParams()
                return [ToHost(request.encode())]
            if self.state != "rx":
                self.counters["tx_busy"] += 1
                return []
            if self._channel_busy():
                self.state, self._lbt = "lbt", (msg.data, now)
                self.counters["lbt_deferred"] += 1
                return []
            return self._start_tx(msg.data, now)
        if isinstance(msg, GetRssi):
            if self.state in ("rx", "tx", "lbt"):
                rssi = _clamp_round(self.current_rssi_dbm(), -32768, 32767)
                return [ToHost(SetRssi(rssi).encode())]
            self.counters["rssi_before_init"] += 1
            return []
        if isinstance(msg, SetRssi):
            self.rssi_threshold = msg.rssi_dbm
            return []
        if isinstance(msg, GetModuleName):
            return [ToHost(ModuleName(self.module_name).encode())]
        if isinstance(msg, GetLoraCoreName):
            return [ToHost(LoraCoreName(self.loracore_name).encode())]
        return []  # the parser only yields host-side messages


# --- the I/O shell ------------------------------------------------------------------------

_T = TypeVar("_T")


class EByteEmulator:
    """An emulated module on a pseudo-terminal, on the simulated air through `medium_client`."""

    def __init__(
        self,
        name: str,
        link_path: str | os.PathLike[str] | None = None,
        medium_client: Any | None = None,
        *,
        module_name: str = DEFAULT_MODULE_NAME,
        loracore_name: str = DEFAULT_LORACORE_NAME,
        tx_power_dbm: float | None = None,
        band_hz: tuple[int, int] = EBYTE_433_BAND_HZ,
        boot_announce: bool = True,
        lbt_timeout_s: float = 2.0,
        inter_byte_timeout: float = 0.1,
    ) -> None:
        self.name = name
        self.medium = medium_client
        if tx_power_dbm is None:
            tx_power_dbm = nominal_power_dbm(module_name) or 20.0
        self.tx_power_dbm = float(tx_power_dbm)
        self.boot_announce = boot_announce
        self.inter_byte_timeout = inter_byte_timeout
        self.logic = EByteModuleLogic(module_name, loracore_name, band_hz=band_hz,
                                      lbt_timeout_s=lbt_timeout_s,
                                      medium_timing=medium_client is not None)
        link = Path(link_path) if link_path is not None else DEFAULT_PTY_DIR / f"{name}.tty"
        self.port = PtyPort(link)
        self._lock = threading.RLock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stop = threading.Event()
        self._drop_answers = 0
        self._reset_on_tx = False
        self._last_byte_t = time.monotonic()
        self._counters: Counter[str] = Counter()
        self._powered = False
        self._closed = False

    # -- public --

    @property
    def path(self) -> str:
        """What a driver opens: the stable symlink."""
        return self.port.path

    @property
    def phy(self) -> PhySettings | None:
        return self.logic.phy

    @property
    def state(self) -> str:
        return self.logic.state

    @property
    def counters(self) -> dict[str, int]:
        with self._lock:
            out = dict(self.logic.counters)
            out.update(self._counters)
            out.update({f"parser_{k}": v for k, v in self.logic.parser.counters.as_dict().items()})
            return out

    def power_on(self) -> None:
        """Boot the module (done by `serve_forever` if not yet powered)."""
        self._locked(lambda: self._boot())

    def serve_forever(self) -> None:
        """Run until `stop()`: UART bytes, medium events and timers, each wait <= 0.1 s."""
        if self._closed:
            raise LoraTelemetryError(f"EByte emulator {self.name} is closed")
        with self._lock:
            if not self._powered:
                self._boot()
        while not self._stop.is_set():  # a stop() before we got here counts too
            self._step()

    def stop(self) -> None:
        """Make `serve_forever` return (final; safe from signal handlers and other threads)."""
        self._stop.set()
        self._wake()

    def close(self) -> None:
        """Stop, put the radio in standby and remove the pty and its link (idempotent)."""
        self.stop()
        with self._lock:
            self._closed = True
            if self.medium is not None and self._powered:
                self._medium_call("standby")
            self._powered = False
            self.port.close()
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._wake_r = self._wake_w = -1

    def __enter__(self) -> "EByteEmulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fault injection --

    def inject_garbage(self, data: bytes | None = None) -> None:
        """Write noise to the host. Default: bytes holding a false start of frame with an
        unknown packet type and a lone 0x40, which a parser must skip."""
        noise = data if data is not None else b"\x13\x37\x40\x53\xEE\x01\x00\xFF\x40"
        self._locked(lambda: self._write_host(bytes(noise)))

    def reset(self, during_next_tx: bool = False) -> None:
        """Spontaneous restart: configuration forgotten, REQ_LORA_MODES sent (power-on).
        ``during_next_tx``: restart right after the next transmission has started instead."""
        def do() -> None:
            if during_next_tx:
                self._reset_on_tx = True
            else:
                self._counters["resets"] += 1
                self._boot()
        self._locked(do)

    def drop_answers(self, count: int = 1) -> None:
        """Lose the next `count` frames the module sends to the host (0 cancels)."""
        def do() -> None:
            self._drop_answers = max(0, int(count))
        self._locked(do)

    def unplug(self) -> None:
        """Pull the USB adapter: the port closes (the driver sees RadioDisconnected) and the
        module, powered through it, goes off."""
        def do() -> None:
            self._counters["unplugs"] += 1
            self._execute(self.logic.power_off())
            self._powered = False
            self.port.unplug()
        self._locked(do)

    def replug(self) -> None:
        """Plug it back in: a new pty behind the same link, and the module boots."""
        def do() -> None:
            self.port.replug()
            self._boot()
        self._locked(do)

    def set_channel_rssi(self, rssi_dbm: float | None) -> None:
        """The RSSI the module's radio measures (GET_RSSI, listen before talk); None = noise."""
        def do() -> None:
            self.logic.channel_rssi_dbm = rssi_dbm
        self._locked(do)

    # -- internals --

    def _locked(self, fn: Callable[[], _T]) -> _T:
        with self._lock:
            result = fn()
        self._wake()
        return result

    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    def _boot(self) -> None:
        self._powered = True
        actions = self.logic.boot(time.monotonic())
        if not self.boot_announce:
            actions = [a for a in actions if not isinstance(a, ToHost)]
        self._execute(actions)

    def _step(self) -> None:
        with self._lock:
            fds = [self._wake_r]
            if self.port.master_fd is not None:
                fds.append(self.port.master_fd)
            medium_fd = self._medium_fileno()
            if medium_fd is not None:
                fds.append(medium_fd)
            deadline = self.logic.next_deadline(time.monotonic())
        wait = _MAX_WAIT_S
        if deadline is not None:
            wait = max(0.0, min(wait, deadline - time.monotonic()))
        try:
            readable, _, _ = select.select(fds, [], [], wait)
        except (OSError, ValueError):  # an fd closed by unplug()/close() meanwhile
            readable = []
            time.sleep(0.01)
        with self._lock:
            if self._wake_r in readable:
                try:
                    os.read(self._wake_r, 4096)
                except OSError:
                    pass
            now = time.monotonic()
            master = self.port.master_fd
            if master is not None and master in readable:
                data = self.port.read(0)
                if data:
                    self._last_byte_t = now
                    self._execute(self.logic.feed(data, now))
            if self.logic.parser.pending and now - self._last_byte_t > self.inter_byte_timeout:
                self._execute(self.logic.stalled(now))
            if medium_fd is not None and medium_fd in readable:
                self._drain_medium(now)
            self._execute(self.logic.poll(time.monotonic()))

    def _medium_fileno(self) -> int | None:
        if self.medium is None or not self._powered:
            return None
        try:
            return self.medium.fileno()
        except (OSError, ValueError, LoraTelemetryError):
            return None

    def _drain_medium(self, now: float) -> None:
        for _ in range(64):  # bounded: never starve the UART
            try:
                event = self.medium.next_event(timeout=0)
            except (OSError, LoraTelemetryError) as exc:
                self._counters["medium_errors"] += 1
                log.warning("%s: medium: %s", self.name, exc)
                return
            if event is None:
                return
            # RxEvent carries `data`; TxDoneEvent does not (duck-typed so that a stub client
            # honouring the contract works as well as sim.medium's).
            if getattr(event, "data", None) is not None:
                self._execute(self.logic.on_rx(event.data, event.phy, event.rssi_dbm,
                                               event.snr_db, event.crc_ok, now))
            else:
                self._execute(self.logic.on_tx_done(now))

    def _medium_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.medium, method)(*args, **kwargs)
        except (OSError, LoraTelemetryError) as exc:
            self._counters["medium_errors"] += 1
            log.warning("%s: medium %s failed: %s", self.name, method, exc)
            return None

    def _execute(self, actions: list[Action]) -> None:
        # Without a medium there is no air: a transmission only takes its time (logic timers).
        for action in actions:
            if isinstance(action, ToHost):
                if self._drop_answers > 0:
                    self._drop_answers -= 1
                    self._counters["dropped_answers"] += 1
                    continue
                self._write_host(action.data)
            elif isinstance(action, Transmit):
                if self.medium is not None:
                    self._medium_call("transmit", action.data, action.phy,
                                      power_dbm=self.tx_power_dbm)
                if self._reset_on_tx:
                    self._reset_on_tx = False
                    self._counters["resets"] += 1
                    self._boot()
            elif isinstance(action, Listen) and self.medium is not None:
                self._medium_call("listen", action.phy)
            elif isinstance(action, Standby) and self.medium is not None:
                self._medium_call("standby")

    def _write_host(self, data: bytes) -> None:
        """Write with a bounded wait (PtyPort.write would wait forever for a host that never
        reads); what does not fit is lost, as on a UART without flow control."""
        fd = self.port.master_fd
        if fd is None:
            self._counters["lost_unplugged"] += 1
            return
        view = memoryview(data)
        deadline = time.monotonic() + _HOST_WRITE_TIMEOUT_S
        while view:
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._counters["host_overrun"] += 1
                    return
                select.select([], [fd], [], 0.05)
            except OSError:
                self._counters["lost_unplugged"] += 1
                return
