"""The EByte 433 MHz UART module with the custom firmware, emulated: its firmware's logic.

A sans-I/O state machine (events in, actions out, time passed in; the vocabulary is
core/emulation.py) that sim/device_loop.py runs behind a pseudo-terminal, on the simulated
air; ``lora-telemetry sim module --type ebyte`` builds it through the registry. Options:
``module_name``, ``loracore_name``, ``tx_power_dbm`` (None: the part's nominal power, e.g.
30 dBm for a T30D), ``band_hz``, ``boot_announce``, ``lbt_timeout_s``, ``inter_byte_timeout``,
``seed`` (latency jitter), ``tx_latency`` / ``rx_latency`` (core.latency values; default
timing.py's).

Timing (issue 13; figures and their sources in timing.py): a frame reaches the air
``TX_LATENCY`` after the host's AIR_PKT has completely arrived (the device loop models the
115200-baud UART), and a frame heard on the air is sent to the host ``RX_LATENCY`` after its
end; both are deadlines of :meth:`EByteModuleLogic.poll`, like the transmit guard.

Behaviour (the seed: ../shared/seeds/ebyte-custom-firmware-protocol.md, and its capture):

* power-on when the loop starts serving: REQ_LORA_MODES ("Request from the module for the
  SET_LORA_MODES_CMD command before any radio operation"), nothing configured. A host that
  opens the port later never sees it (pyserial flushes input on open), like the capture's
  host, which starts with SET_LORA_MODES;
* SET_LORA_MODES -> REQ_LORA_PARAMS; SET_LORA_PARAMS -> radio on, receiving -> REQ_AIR_PKT
  (the capture's order);
* AIR_PKT from the host -> on the air with the configured PhySettings until the air reports
  it done (TxDoneEvent; a guard ends it 1 s after its time on air if that never comes), then
  receiving again -> REQ_AIR_PKT ("ready to transmit a packet from the host");
* a frame heard on the air -> AIR_PKT to the host with the medium's RSSI (int16 LE) and
  SNR (int8), rounded to whole dB as the firmware's integer fields are: the module's raw
  receive path;
* GET_RSSI -> SET_RSSI (only once the radio is initialised, as the seed says); SET_RSSI from
  the host sets the listen-before-talk threshold; GET_MODULE_NAME / GET_LORACORE_NAME ->
  their responses.

Assumptions where the seed is silent (each counted in `counters`): an AIR_PKT before the
radio is configured is dropped and the missing configuration requested again; an AIR_PKT
while still transmitting is dropped; SET_LORA_PARAMS outside 410-525 MHz (or SF5, which
PhySettings cannot express) is ignored, so no REQ_AIR_PKT follows; with CRC on, frames with a
bad CRC are not passed to the host; in implicit mode only frames of the programmed length,
CRC setting and coding rate are decodable; a transmission blocked by listen before talk is
retried until the channel is clear or dropped after ``lbt_timeout_s``; a frame the host stops
sending mid-way is given up after ``inter_byte_timeout``.

Fault injection (core/emulation.py's commands): Reset (now, or right after the next
transmission started), Garbage, DropAnswers (every frame to the host counts, boot requests
too), Unplug (the USB adapter also powers the module; optional replug after a delay), Replug
(a power-on), SetChannelRssi (what GET_RSSI and listen before talk see). Silence is refused:
the custom firmware has no silent mode.
"""

from __future__ import annotations

import enum
import logging
import math
import random
from collections import Counter
from typing import Mapping

from lora_telemetry.core.emulation import (
    Accepted, Action, CancelTimer, DeviceEvent, DropAnswers, RxEvent, Garbage, HostBytes,
    Listen, PowerOn, PowerOnMoment, Replug, ReplugPort, Reset, SetChannelRssi, Silence,
    Standby, StartTimer, TimerFired, ToHost, Transmit, TxDoneEvent, Unplug, UnplugPort,
    refuse_unsupported,
)
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.latency import Latency
from lora_telemetry.core.phy import PhySettings, noise_floor_dbm
from lora_telemetry.radios.ebyte import timing
from lora_telemetry.radios.ebyte.protocol import (
    EBYTE_433_BAND_HZ, AirPacketFromHost, AirPacketFromModule, FrameParser, GetLoraCoreName,
    GetModuleName, GetRssi, LoraCoreName, Message, ModuleName, ReqAirPkt, ReqLoraModes,
    ReqLoraParams, Sender, SetLoraModes, SetLoraParams, SetRssi, check_frequency,
    nominal_power_dbm, phy_from_messages,
)

__all__ = ["EByteModuleLogic", "ModuleState", "DEFAULT_MODULE_NAME", "DEFAULT_LORACORE_NAME",
           "DEFAULT_GARBAGE"]

log = logging.getLogger(__name__)

#: The seed's examples: "for example `e32-433t30d-10010-v6.2`", "for example `SX1278`".
DEFAULT_MODULE_NAME = "e32-433t30d-10010-v6.2"
DEFAULT_LORACORE_NAME = "SX1278"
#: Injected noise: a false start of frame with an unknown packet type and a lone 0x40, which
#: a parser must skip.
DEFAULT_GARBAGE = b"\x13\x37\x40\x53\xEE\x01\x00\xFF\x40"
_TX_DONE_GRACE_S = 1.0  # an air that never reports TxDone must not wedge the module
_LBT_RETRY_S = 0.01
_POLL, _STALL, _REPLUG = "poll", "stall", "replug"  # timer keys


class ModuleState(str, enum.Enum):
    OFF = "off"  # not powered
    WAIT_MODES = "wait_modes"
    WAIT_PARAMS = "wait_params"
    RX = "rx"
    LBT = "lbt"  # a packet waits for a clear channel
    TX = "tx"


def _clamp_round(value: float, lo: int, hi: int) -> int:
    if not math.isfinite(value):
        return lo
    return max(lo, min(hi, int(round(value))))


class EByteModuleLogic:
    """The firmware's behaviour as a state machine (:class:`ModuleState`): `handle` takes the
    loop's events; `boot`, `feed`, `on_rx`, `on_tx_done`, `stalled` and `poll` are the steps
    it is made of, each returning the module's actions."""

    power_on_at = PowerOnMoment.SERVING

    def __init__(
        self,
        module_name: str = DEFAULT_MODULE_NAME,
        loracore_name: str = DEFAULT_LORACORE_NAME,
        *,
        name: str = "ebyte",
        tx_power_dbm: float | None = None,
        band_hz: tuple[int, int] = EBYTE_433_BAND_HZ,
        boot_announce: bool = True,
        lbt_timeout_s: float = 2.0,
        inter_byte_timeout: float = 0.1,
        seed: int | None = None,
        tx_latency: Latency = timing.TX_LATENCY,
        rx_latency: Latency = timing.RX_LATENCY,
    ) -> None:
        ModuleName(module_name).encode()  # validate now, not at the first GET_MODULE_NAME
        LoraCoreName(loracore_name).encode()
        self.name = name
        self.module_name = module_name
        self.loracore_name = loracore_name
        if tx_power_dbm is None:
            tx_power_dbm = nominal_power_dbm(module_name) or 20.0
        self.tx_power_dbm = float(tx_power_dbm)
        self.band_hz = band_hz
        self.boot_announce = boot_announce
        self.lbt_timeout_s = lbt_timeout_s
        self.inter_byte_timeout = inter_byte_timeout
        self.parser = FrameParser(Sender.HOST)
        self._counters: Counter[str] = Counter()
        self.channel_rssi_dbm: float | None = None
        self._drop_answers = 0
        self._reset_on_tx = False
        self._poll_at: float | None = None
        self.tx_latency, self.rx_latency = tx_latency, rx_latency
        self._latency_rng = random.Random(None if seed is None else f"ebyte-latency/{seed}")
        self._power_off()

    @property
    def counters(self) -> Mapping[str, int]:
        """The module's counters and its UART parser's (``parser_<name>``)."""
        out = Counter(self._counters)
        out.update({f"parser_{k}": v for k, v in self.parser.counters.as_dict().items()})
        return out

    # -- the loop's entry point --

    def handle(self, event: DeviceEvent, now: float) -> list[Action]:
        """One event from the device loop; the module's actions (core/emulation.py)."""
        if isinstance(event, HostBytes):
            actions = self._answers(self.feed(event.data, now), now)
            if self.parser.pending:
                actions.append(StartTimer(_STALL, now + self.inter_byte_timeout))
            else:
                actions.append(CancelTimer(_STALL))
        elif isinstance(event, RxEvent):
            actions = self._answers(self.on_rx(event.data, event.phy, event.rssi_dbm,
                                               event.snr_db, event.crc_ok, now,
                                               t_end=event.t_end), now)
        elif isinstance(event, TxDoneEvent):
            actions = self._answers(self.on_tx_done(now), now)
        elif isinstance(event, TimerFired):
            actions = self._on_timer(event.key, now)
        elif isinstance(event, PowerOn):
            actions = self._power_on(now)
        elif isinstance(event, (Reset, Garbage, DropAnswers, Unplug, Replug, SetChannelRssi,
                                Silence)):
            actions = self._on_control(event, now)
        else:  # TransmitFailed (the guard and the loop end the frame), SPI, pins: nothing
            return []
        return actions + self._rearm_poll(now)

    def _on_timer(self, key: object, now: float) -> list[Action]:
        if key == _POLL:
            self._poll_at = None
            return self._answers(self.poll(now), now)
        if key == _STALL and self.parser.pending:
            return self._answers(self.stalled(now), now)
        if key == _REPLUG and self.state is ModuleState.OFF:
            return [ReplugPort()] + self._power_on(now)
        return []

    def _on_control(self, command: object, now: float) -> list[Action]:
        if isinstance(command, Reset):
            if command.during_next_tx:
                self._reset_on_tx = True
                return [Accepted()]
            self._counters["resets"] += 1
            return self._power_on(now) + [Accepted()]
        if isinstance(command, Garbage):
            noise = command.data if command.data is not None else DEFAULT_GARBAGE
            return [ToHost(bytes(noise)), Accepted()]
        if isinstance(command, DropAnswers):
            self._drop_answers = max(0, int(command.count))
            return [Accepted()]
        if isinstance(command, Unplug):
            # The USB adapter also powers the module: the port closes and the module goes off.
            self._counters["unplugs"] += 1
            actions: list[Action] = self.power_off() + [UnplugPort(), CancelTimer(_STALL)]
            if command.replug_after_s is not None:
                actions.append(StartTimer(_REPLUG, now + max(0.0, command.replug_after_s)))
            return actions + [Accepted()]
        if isinstance(command, Replug):
            return [CancelTimer(_REPLUG), ReplugPort()] + self._power_on(now) + [Accepted()]
        if isinstance(command, SetChannelRssi):
            self.channel_rssi_dbm = command.rssi_dbm
            return [Accepted()]
        assert isinstance(command, Silence)
        return refuse_unsupported("the EByte custom firmware", command, "it has no silent mode")

    def _power_on(self, now: float) -> list[Action]:
        actions = self.boot(now)
        if not self.boot_announce:
            actions = [a for a in actions if not isinstance(a, ToHost)]
        return self._answers(actions, now)

    def _answers(self, actions: list[Action], now: float) -> list[Action]:
        """Frames to the host pass unless answers are being dropped; a pending reset strikes
        right after the transmission it waited for has started."""
        out: list[Action] = []
        for action in actions:
            if isinstance(action, ToHost) and self._drop_answers > 0:
                self._drop_answers -= 1
                self._counters["dropped_answers"] += 1
                continue
            out.append(action)
            if isinstance(action, Transmit) and self._reset_on_tx:
                self._reset_on_tx = False
                self._counters["resets"] += 1
                out += self._power_on(now)
        return out

    def _rearm_poll(self, now: float) -> list[Action]:
        """Keep the loop's poll timer at `next_deadline` (an earlier armed one stays)."""
        due = self.next_deadline(now)
        if due is None:
            if self._poll_at is None:
                return []
            self._poll_at = None
            return [CancelTimer(_POLL)]
        if self._poll_at is not None and self._poll_at <= due:
            return []
        self._poll_at = due
        return [StartTimer(_POLL, due)]

    # -- the steps --

    def _power_off(self) -> None:
        self.state = ModuleState.OFF
        self.modes: SetLoraModes | None = None
        self.params: SetLoraParams | None = None
        self.phy: PhySettings | None = None
        self.rssi_threshold: int | None = None
        self._tx_end: float | None = None
        self._lbt: tuple[bytes, float] | None = None
        self._key_on: tuple[float, bytes] | None = None  # a frame waiting for the air
        self._reports: list[tuple[float, bytes]] = []  # received frames on their way out
        self.parser.reset()

    # -- events --

    def boot(self, now: float) -> list[Action]:
        """Power-on: everything forgotten; ask for SET_LORA_MODES."""
        self._power_off()
        self.state = ModuleState.WAIT_MODES
        self._counters["boots"] += 1
        return [Standby(), ToHost(ReqLoraModes().encode())]

    def power_off(self) -> list[Action]:
        self._power_off()
        return [Standby()]

    def feed(self, data: bytes, now: float) -> list[Action]:
        """Bytes from the host's UART."""
        if self.state is ModuleState.OFF:
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
              crc_ok: bool, now: float, t_end: float | None = None) -> list[Action]:
        """A frame the medium delivered (we were listening for all of it), which ended on the
        air at ``t_end`` (None: now); its AIR_PKT goes out RX_LATENCY after that."""
        if self.state is not ModuleState.RX or self.phy is None or self.modes is None:
            self._counters["rx_not_listening"] += 1
            return []
        ours = self.phy
        if phy.explicit_header != ours.explicit_header:
            self._counters["rx_header_mode_mismatch"] += 1
            return []
        crc_on = phy.crc_on
        if not ours.explicit_header:
            # Implicit header: length, CRC and coding rate are not on the air; the receiver's
            # own settings must match the sender's or the frame cannot be decoded.
            if (len(data) != self.modes.packet_length or phy.crc_on != ours.crc_on
                    or phy.coding_rate != ours.coding_rate):
                self._counters["rx_implicit_mismatch"] += 1
                return []
            crc_on = ours.crc_on
        if crc_on and not crc_ok:
            self._counters["rx_crc_error"] += 1
            return []
        if not 1 <= len(data) <= 255:
            self._counters["rx_bad_length"] += 1
            return []
        self._counters["rx_frames"] += 1
        pkt = AirPacketFromModule(bytes(data), _clamp_round(rssi_dbm, -32768, 32767),
                                  _clamp_round(snr_db, -128, 127))
        at = (now if t_end is None else t_end) + self.rx_latency.draw(self._latency_rng)
        if at <= now:
            return [ToHost(pkt.encode())]
        self._reports.append((at, pkt.encode()))
        return []

    def on_tx_done(self, now: float) -> list[Action]:
        if self.state is not ModuleState.TX or self.phy is None:
            return []  # e.g. a restart happened while the frame was on the air
        self.state, self._tx_end = ModuleState.RX, None
        self._counters["tx_frames"] += 1
        return [Listen(self.phy), ToHost(ReqAirPkt().encode())]

    def poll(self, now: float) -> list[Action]:
        """Timers: a frame's key-on, reports on their way out, end of a transmission,
        listen-before-talk retries."""
        actions: list[Action] = []
        while self._reports and self._reports[0][0] <= now:
            actions.append(ToHost(self._reports.pop(0)[1]))
        if self._key_on is not None and self._key_on[0] <= now:
            data = self._key_on[1]
            self._key_on = None
            actions += self._air(data, now)
        return actions + self._poll_tx(now)

    def _poll_tx(self, now: float) -> list[Action]:
        if self.state is ModuleState.TX and self._tx_end is not None:
            if now >= self._tx_end + _TX_DONE_GRACE_S:  # the air never said it was done
                self._counters["tx_done_missing"] += 1
                return self.on_tx_done(now)
        if self.state is ModuleState.LBT and self._lbt is not None:
            data, since = self._lbt
            if not self._channel_busy():
                self._lbt = None
                return self._start_tx(data, now)
            if now - since >= self.lbt_timeout_s:
                self._lbt = None
                self.state = ModuleState.RX
                self._counters["lbt_dropped"] += 1
                return [ToHost(ReqAirPkt().encode())]
        return []

    def next_deadline(self, now: float) -> float | None:
        """When `poll` next has something to do (None: only events can change anything)."""
        due = [at for at, _ in self._reports[:1]]
        if self._key_on is not None:
            due.append(self._key_on[0])
        if self.state is ModuleState.TX and self._tx_end is not None:
            due.append(self._tx_end + _TX_DONE_GRACE_S)
        if self.state is ModuleState.LBT and self._lbt is not None:
            due.append(now + _LBT_RETRY_S)
        return min(due, default=None)

    def current_rssi_dbm(self) -> float:
        if self.channel_rssi_dbm is not None:
            return self.channel_rssi_dbm
        bandwidth = self.phy.bandwidth_hz if self.phy is not None else 125000
        return noise_floor_dbm(bandwidth)

    # -- internals --

    def _channel_busy(self) -> bool:
        return self.rssi_threshold is not None and self.current_rssi_dbm() > self.rssi_threshold

    def _start_tx(self, data: bytes, now: float) -> list[Action]:
        """Busy from now on; the frame goes on the air after TX_LATENCY."""
        self.state = ModuleState.TX
        self._tx_end = None
        at = now + self.tx_latency.draw(self._latency_rng)
        if at > now:
            self._key_on = (at, data)
            return []
        return self._air(data, now)

    def _air(self, data: bytes, now: float) -> list[Action]:
        if self.state is not ModuleState.TX or self.phy is None:
            return []  # reconfigured in between: the frame is gone
        self._tx_end = now + self.phy.time_on_air(len(data))
        return [Transmit(data, self.phy, self.tx_power_dbm)]

    def _on_message(self, msg: Message, now: float) -> list[Action]:
        if isinstance(msg, SetLoraModes):
            self.modes, self.params, self.phy = msg, None, None
            self.state, self._tx_end, self._lbt = ModuleState.WAIT_PARAMS, None, None
            self._key_on = None
            return [Standby(), ToHost(ReqLoraParams().encode())]
        if isinstance(msg, SetLoraParams):
            if self.modes is None:
                self._counters["params_without_modes"] += 1
                return [ToHost(ReqLoraModes().encode())]
            try:
                check_frequency(msg.frequency_hz, self.band_hz)
                phy = phy_from_messages(self.modes, msg)
            except ConfigError as exc:
                self._counters["rejected_params"] += 1
                log.warning("EByte emulator: SET_LORA_PARAMS ignored: %s", exc)
                return []
            self.params, self.phy = msg, phy
            self.state, self._tx_end, self._lbt = ModuleState.RX, None, None
            self._key_on = None
            return [Listen(phy), ToHost(ReqAirPkt().encode())]
        if isinstance(msg, AirPacketFromHost):
            if self.state in (ModuleState.WAIT_MODES, ModuleState.WAIT_PARAMS):
                self._counters["tx_unconfigured"] += 1
                waiting_modes = self.state is ModuleState.WAIT_MODES
                request = ReqLoraModes() if waiting_modes else ReqLoraParams()
                return [ToHost(request.encode())]
            if self.state is not ModuleState.RX:
                self._counters["tx_busy"] += 1
                return []
            if self._channel_busy():
                self.state, self._lbt = ModuleState.LBT, (msg.data, now)
                self._counters["lbt_deferred"] += 1
                return []
            return self._start_tx(msg.data, now)
        if isinstance(msg, GetRssi):
            if self.state in (ModuleState.RX, ModuleState.TX, ModuleState.LBT):
                rssi = _clamp_round(self.current_rssi_dbm(), -32768, 32767)
                return [ToHost(SetRssi(rssi).encode())]
            self._counters["rssi_before_init"] += 1
            return []
        if isinstance(msg, SetRssi):
            self.rssi_threshold = msg.rssi_dbm
            return []
        if isinstance(msg, GetModuleName):
            return [ToHost(ModuleName(self.module_name).encode())]
        if isinstance(msg, GetLoraCoreName):
            return [ToHost(LoraCoreName(self.loracore_name).encode())]
        return []  # the parser only yields host-side messages


