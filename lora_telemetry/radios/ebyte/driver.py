"""Driver for EByte 433 MHz UART LoRa modules running the custom firmware (`Radio` interface).

Wire format and message types: `radios/ebyte_protocol.py` (sans-I/O); this module adds the
conversation and the serial port (115200 8N1, `SerialTransport`).

The conversation follows the seed's captured exchange (ebyte-custom-firmware-protocol.md,
"Messaging example")::

    host   SET_LORA_MODES        40 53 0A 08 00 ...
    module REQ_LORA_PARAMS       40 53 02 00 00
    host   SET_LORA_PARAMS       40 53 01 07 00 ...
    module REQ_AIR_PKT           40 53 03 00 00     "radio ready": receiving, may transmit
    host   AIR_PKT (to send)  /  module AIR_PKT (received, + RSSI int16 LE + SNR int8)

Decisions:

* The module *requests* its configuration (REQ_LORA_MODES after boot, REQ_LORA_PARAMS after
  SET_LORA_MODES). The driver answers those requests whenever they come, with the settings of
  the last `configure`, so a module that restarts on its own is reconfigured without the
  caller's help (counted in ``stats["resets"]``). `configure` starts the exchange itself with
  SET_LORA_MODES, as the capture's host does (it never saw the boot request: bytes sent before
  a port is opened are lost, so the driver flushes its input on open).
* TX done: the protocol has no TX-done message. REQ_AIR_PKT says the radio is receiving and
  "ready to transmit a packet from the host", so a module that has finished sending announces
  it again; `send` waits for that REQ_AIR_PKT (``tx_done="ready"``, default) and uses it as
  flow control: it never hands the module a packet before the module said it is ready. The
  capture stops right after the host's AIR_PKT, so for a firmware that stays silent,
  ``tx_done="airtime"`` waits the computed time on air instead.
* Implicit header mode needs the fixed packet length, which `PhySettings` does not carry: it is
  the driver option ``implicit_length`` (the seed's example uses 48).
* The protocol cannot set TX power or LDRO: the module transmits at its hardware power class
  (e.g. T30D = 30 dBm) and the firmware picks LDRO. `phy.tx_power_dbm` is kept as given.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Callable

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.phy import MAX_PAYLOAD_BYTES, PhySettings
from lora_telemetry.radios.base import (
    ModuleReset,
    RawRadio,
    RadioBusy,
    RadioDisconnected,
    RadioError,
    RadioTimeout,
    RxFrame,
    TxResult,
)
from lora_telemetry.radios.ebyte.protocol import (
    BAUDRATE,
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
    phy_to_messages,
)
from lora_telemetry.radios.serial_transport import SerialTransport

__all__ = ["EByteRadio"]

log = logging.getLogger(__name__)

_READ_SLICE_S = 0.05  # longest single blocking read: keeps the inter-byte check responsive


class EByteRadio(RawRadio):
    """An EByte E32/E22/E220/E78 433 MHz module with the custom firmware, on a serial port.

    Not thread-safe (one thread per radio, as `Radio` says). Every wait is bounded by
    ``answer_timeout`` (module answers) or by the frame's time on air plus that margin.
    """

    def __init__(
        self,
        port: str,
        baudrate: int = BAUDRATE,
        *,
        implicit_length: int | None = None,
        answer_timeout: float = 1.0,
        retries: int = 2,
        tx_done: str = "ready",
        band_hz: tuple[int, int] = EBYTE_433_BAND_HZ,
        inter_byte_timeout: float = 0.1,
        rx_queue_len: int = 64,
        transport: SerialTransport | None = None,
    ) -> None:
        if tx_done not in ("ready", "airtime"):
            raise ConfigError(f"tx_done must be 'ready' or 'airtime', got {tx_done!r}")
        if implicit_length is not None and (
            isinstance(implicit_length, bool) or not isinstance(implicit_length, int)
            or not 1 <= implicit_length <= MAX_PAYLOAD_BYTES
        ):
            raise ConfigError(f"implicit_length {implicit_length!r} must be an int 1..255")
        for label, value in (("answer_timeout", answer_timeout), ("inter_byte_timeout",
                                                                 inter_byte_timeout)):
            if not isinstance(value, (int, float)) or not 0 < value <= 60:
                raise ConfigError(f"{label} {value!r} must be 0 < seconds <= 60")
        self.port = port
        self.implicit_length = implicit_length
        self.answer_timeout = float(answer_timeout)
        self.retries = max(0, int(retries))
        self.tx_done = tx_done
        self.band_hz = band_hz
        self.inter_byte_timeout = float(inter_byte_timeout)
        self.name = f"EByte on {port}"
        self._transport = transport or SerialTransport(port, baudrate)
        self._parser = FrameParser(Sender.MODULE)
        self._last_byte_t = time.monotonic()
        self._rx: collections.deque[RxFrame] = collections.deque()
        self._rx_queue_len = rx_queue_len
        # Configuration the driver answers the module's requests with.
        self._desired: tuple[SetLoraModes, SetLoraParams] | None = None
        self._desired_phy: PhySettings | None = None
        self._phy: PhySettings | None = None
        # Handshake: idle -> modes_sent -> params_sent -> ready (REQ_AIR_PKT seen).
        self._hs = "idle"
        self._ready = False  # a REQ_AIR_PKT "credit": the module may be handed one AIR_PKT
        self._tx_state: str | None = None  # during send: pending / done / reset
        # When each SET_LORA_PARAMS still awaiting its REQ_AIR_PKT was sent.
        self._params_pending: collections.deque[float] = collections.deque()
        self._rssi_threshold: int | None = None
        self._module_name: str | None = None
        self._core_name: str | None = None
        self._rssi_reports = 0
        self._last_rssi: int | None = None
        self.counters: collections.Counter[str] = collections.Counter(dict.fromkeys(
            ("tx_frames", "rx_frames", "retries", "resets", "reconnects", "stale_ready",
             "unanswered_requests", "rx_unconfigured", "rx_overflow"), 0))
        self._power_warned = False
        self._open()

    # --- Radio interface ------------------------------------------------------------------

    @property
    def phy(self) -> PhySettings | None:
        return self._phy

    def configure(self, phy: PhySettings) -> None:
        """SET_LORA_MODES, answer REQ_LORA_PARAMS with SET_LORA_PARAMS, wait for REQ_AIR_PKT;
        resend SET_LORA_MODES up to ``retries`` times if an answer is lost."""
        if not isinstance(phy, PhySettings):
            raise ConfigError(f"configure() needs a PhySettings, got {type(phy).__name__}")
        try:
            check_frequency(phy.frequency_hz, self.band_hz)
            modes, params = phy_to_messages(phy, self.implicit_length)
        except ConfigError as exc:
            raise RadioError(f"{self.name}: {exc}") from exc
        if phy.tx_power_dbm is not None and not self._power_warned:
            self._power_warned = True
            log.warning("%s: the EByte firmware has no TX power command; the module sends at "
                        "its hardware power, not %.1f dBm", self.name, phy.tx_power_dbm)
        self._desired, self._desired_phy = (modes, params), phy
        for attempt in range(self.retries + 1):
            if attempt:
                self.counters["retries"] += 1
                log.info("%s: no answer to the configuration, retry %d", self.name, attempt)
            self._write(modes.encode())
            self._hs, self._ready = "modes_sent", False
            if self._wait(lambda: self._hs == "ready", 2 * self.answer_timeout):
                self._phy = phy
                return
        self._phy = None  # the module's state is unknown now: send/receive need a configure
        raise RadioTimeout(
            f"{self.name}: the module did not complete SET_LORA_MODES -> REQ_LORA_PARAMS -> "
            f"SET_LORA_PARAMS -> REQ_AIR_PKT in {self.retries + 1} attempts "
            f"(last state: {self._hs})"
        )

    def send(self, data: bytes, timeout: float | None = None) -> TxResult:
        """AIR_PKT to the module; returns when the module reports ready again (see module
        docstring). RadioBusy if it never became ready to take the packet, RadioTimeout if
        it did not finish, ModuleReset if it restarted meanwhile (configuration restored,
        the frame may not have gone out)."""
        phy = self._require_phy()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise RadioError(f"{self.name}: send() takes bytes, got {type(data).__name__}")
        data = bytes(data)
        if not 1 <= len(data) <= MAX_PAYLOAD_BYTES:
            raise RadioError(f"{self.name}: a LoRa frame carries 1..255 bytes, not {len(data)}")
        if not phy.explicit_header and len(data) != self.implicit_length:
            raise RadioError(f"{self.name}: implicit header mode sends exactly "
                             f"{self.implicit_length} bytes, not {len(data)}")
        airtime = phy.time_on_air(len(data))
        budget = timeout if timeout is not None else airtime * 1.2 + 2 * self.answer_timeout
        deadline = time.monotonic() + budget
        resets = self.counters["resets"]
        if not self._wait(lambda: self._hs == "ready" and self._ready, budget):
            if self.counters["resets"] != resets:
                raise ModuleReset(f"{self.name}: module restarted and did not get ready again")
            raise RadioBusy(f"{self.name}: module has not reported ready (REQ_AIR_PKT) within "
                            f"{budget:.2f} s; still transmitting or not configured")
        started = time.time()
        self._write(AirPacketFromHost(data).encode())
        self._ready = False
        self._tx_state = "pending"  # _handle moves it to "done" or "reset", in arrival order
        self.counters["tx_frames"] += 1
        try:
            if self.tx_done == "airtime":
                self._wait(lambda: self._tx_state == "reset", airtime)
            elif not self._wait(lambda: self._tx_state != "pending", deadline - time.monotonic()):
                raise RadioTimeout(f"{self.name}: no REQ_AIR_PKT within {budget:.2f} s after "
                                   f"AIR_PKT ({airtime * 1000:.0f} ms on air)")
            finished = time.time()
            if self._tx_state == "reset":
                self._wait(lambda: self._hs == "ready", 2 * self.answer_timeout)
                raise ModuleReset(f"{self.name}: module restarted while transmitting; "
                                  "configuration restored, the frame may not have been sent")
        finally:
            self._tx_state = None
        return TxResult(airtime_s=airtime, started=started, finished=finished)

    def receive(self, timeout: float) -> RxFrame | None:
        """Next AIR_PKT from the module (RSSI/SNR as it measured them), or None."""
        self._require_phy()
        if not self._rx:
            self._wait(lambda: bool(self._rx), timeout)
        return self._rx.popleft() if self._rx else None

    def close(self) -> None:
        self._transport.close()

    # --- EByte extras ---------------------------------------------------------------------

    def module_name(self) -> str:
        """GET_MODULE_NAME -> GET_MODULE_NAME_RSP, e.g. "e32-433t30d-10010-v6.2"."""
        self._module_name = None
        self._query(GetModuleName(), lambda: self._module_name is not None, "GET_MODULE_NAME")
        assert self._module_name is not None
        return self._module_name

    def loracore_name(self) -> str:
        """GET_LORACORE_NAME -> GET_LORACORE_NAME_RSP, e.g. "SX1278"."""
        self._core_name = None
        self._query(GetLoraCoreName(), lambda: self._core_name is not None, "GET_LORACORE_NAME")
        assert self._core_name is not None
        return self._core_name

    def read_rssi(self) -> int:
        """GET_RSSI -> SET_RSSI: the RSSI (dBm) the radio measures now. Seed: "Valid only when
        the radio is initialized", so only after `configure`."""
        self._require_phy()
        reports = self._rssi_reports
        self._query(GetRssi(), lambda: self._rssi_reports != reports, "GET_RSSI")
        assert self._last_rssi is not None
        return self._last_rssi

    def set_rssi_threshold(self, rssi_dbm: int) -> None:
        """SET_RSSI from the host: the module will not transmit while the channel RSSI is above
        this (listen before talk). No answer exists; re-sent after a module restart."""
        if isinstance(rssi_dbm, bool) or not isinstance(rssi_dbm, int) or not (
            -32768 <= rssi_dbm <= 32767
        ):
            raise ConfigError(f"RSSI threshold {rssi_dbm!r} must be an int16 of dBm")
        self._write(SetRssi(rssi_dbm).encode())
        self._rssi_threshold = rssi_dbm

    def info(self) -> dict:
        """What the protocol can report: names, current RSSI, plus what this driver knows."""
        module = self.module_name()
        core = self.loracore_name()
        rssi = self.read_rssi() if self._phy is not None else None
        self.name = f"EByte {module} ({core}) on {self.port}"
        return {
            "module_name": module,
            "loracore_name": core,
            "nominal_tx_power_dbm": nominal_power_dbm(module),
            "rssi_dbm": rssi,
            "rssi_threshold_dbm": self._rssi_threshold,  # write-only in the protocol
            "port": self.port,
            "baudrate": self._transport.baudrate,
            "band_hz": list(self.band_hz),
            "implicit_length": self.implicit_length,
            "phy": self._phy,
            "ready": self._hs == "ready" and self._ready,
            "stats": dict(self.stats()),
        }

    def reconnect(self, timeout: float = 5.0) -> None:
        """Reopen the port (e.g. after RadioDisconnected) and restore the last configuration."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._open()
                break
            except RadioDisconnected:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
        self.counters["reconnects"] += 1
        if self._desired_phy is not None:
            self.configure(self._desired_phy)

    def stats(self) -> dict[str, int]:
        """The driver's counters plus the frame parser's (``parser.<name>``)."""
        return {**self.counters,
                **{f"parser.{k}": v for k, v in self._parser.counters.as_dict().items()}}

    # --- internals ------------------------------------------------------------------------

    def _open(self) -> None:
        self._transport.open()
        # Whatever the module said while nobody listened (its boot request) is gone on a real
        # UART; a pseudo-terminal would keep it, so drop it explicitly.
        self._transport.reset_input()
        self._parser.reset()
        self._hs, self._ready = "idle", False
        self._params_pending.clear()

    def _require_phy(self) -> PhySettings:
        if self._phy is None:
            raise RadioError(f"{self.name}: not configured yet; call configure(phy) first")
        return self._phy

    def _write(self, frame: bytes) -> None:
        log.debug("%s: > %s", self.name, frame.hex(" "))
        self._transport.write(frame)

    def _query(self, msg: Message, answered: Callable[[], bool], what: str) -> None:
        for attempt in range(self.retries + 1):
            if attempt:
                self.counters["retries"] += 1
            self._write(msg.encode())
            if self._wait(answered, self.answer_timeout):
                return
        raise RadioTimeout(f"{self.name}: no answer to {what} in {self.retries + 1} attempts")

    def _wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Pump the port (answering the module's requests) until `condition` or timeout."""
        deadline = time.monotonic() + max(0.0, timeout)
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._pump(min(remaining, _READ_SLICE_S))
        return True

    def _pump(self, timeout: float) -> None:
        chunk = self._transport.read(timeout)
        now = time.monotonic()
        if chunk:
            log.debug("%s: < %s", self.name, chunk.hex(" "))
            self._last_byte_t = now
            messages = self._parser.feed(chunk)
        elif self._parser.pending and now - self._last_byte_t > self.inter_byte_timeout:
            messages = self._parser.resync()  # the rest of that frame is not coming
        else:
            return
        for msg in messages:
            self._handle(msg)

    def _handle(self, msg: Message) -> None:
        if isinstance(msg, AirPacketFromModule):
            self._on_air_packet(msg)
        elif isinstance(msg, ReqAirPkt):
            if self._hs not in ("params_sent", "ready"):
                self.counters["stale_ready"] += 1  # left from before our SET_LORA_MODES
                return
            # The module answers requests in order: a REQ_AIR_PKT is first the answer to an
            # outstanding SET_LORA_PARAMS (e.g. a second handshake caused by a boot request
            # crossing our SET_LORA_MODES), only then the end of our transmission.
            now = time.monotonic()
            while self._params_pending and now - self._params_pending[0] > self.answer_timeout:
                self._params_pending.popleft()  # that answer was lost
            if self._params_pending:
                self._params_pending.popleft()
            elif self._tx_state == "pending":
                self._tx_state = "done"
            self._hs, self._ready = "ready", True
        elif isinstance(msg, ReqLoraModes):
            if self._tx_state == "pending":
                self._tx_state = "reset"
            if self._hs in ("params_sent", "ready"):
                self.counters["resets"] += 1
                log.warning("%s: module restarted (REQ_LORA_MODES); reconfiguring", self.name)
            self._hs, self._ready = "idle", False
            if self._desired is None:
                self.counters["unanswered_requests"] += 1
                return
            self._write(self._desired[0].encode())
            self._hs = "modes_sent"
        elif isinstance(msg, ReqLoraParams):
            if self._desired is None:
                self.counters["unanswered_requests"] += 1
                return
            self._write(self._desired[1].encode())
            self._params_pending.append(time.monotonic())
            if self._rssi_threshold is not None:  # a restarted module forgot it
                self._write(SetRssi(self._rssi_threshold).encode())
            self._hs, self._ready = "params_sent", False
        elif isinstance(msg, SetRssi):
            self._last_rssi = msg.rssi_dbm
            self._rssi_reports += 1
        elif isinstance(msg, ModuleName):
            self._module_name = msg.name
        elif isinstance(msg, LoraCoreName):
            self._core_name = msg.name

    def _on_air_packet(self, msg: AirPacketFromModule) -> None:
        phy = self._phy or self._desired_phy
        if phy is None:
            self.counters["rx_unconfigured"] += 1
            return
        if len(self._rx) >= self._rx_queue_len:
            self._rx.popleft()  # newest state wins: drop the oldest unread frame
            self.counters["rx_overflow"] += 1
        self.counters["rx_frames"] += 1
        self._rx.append(RxFrame(data=msg.data, phy=phy, rssi_dbm=float(msg.rssi_dbm),
                                snr_db=float(msg.snr_db), crc_ok=True, time=time.time()))
