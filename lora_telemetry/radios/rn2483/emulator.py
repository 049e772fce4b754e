"""The Microchip RN2483 module, emulated: its firmware's logic as a sans-I/O state machine.

sim/device_loop.py runs it behind a pseudo-terminal on the simulated medium (events in,
actions out, time passed in; the vocabulary is core/emulation.py); ``lora-telemetry sim module
--type rn2483`` builds it through the registry. A driver opens the pty exactly as it would open
``/dev/ttyUSB0`` and talks the RN2483 ASCII protocol (command reference DS40001784F, thesis
file lines ~19150-21694): the same answer strings in the same order, ``ok`` at once and the
second answer of ``mac tx``/``mac join``/``radio tx``/``radio rx`` when the operation really
ends on the medium (time on air from the core's PhySettings, LoRaWAN receive windows,
watchdog). The banner is written as soon as the module exists (power-on; a driver opening the
port later flushes it).

Options: ``name`` (logs; the HWEUI's suffix), ``firmware``, ``banner_date``, ``hweui``,
``band`` (after a factory reset), ``seed`` (channel choice, nonces, latency jitter),
``rx_windows``, ``tx_latency`` / ``rx_latency`` (core.latency values; default timing.py's).

Timing (issue 13; figures and their sources in timing.py): a transmission (``radio tx``,
``mac tx``, ``mac join``) reaches the air ``TX_LATENCY`` after the command's last byte has
arrived (the device loop models the UART: the 69 bytes of a 29-byte frame's ``radio tx``
take 12.0 ms at 57600 baud); ``ok`` is answered at once. A frame received by ``radio
rx`` is reported ``RX_LATENCY`` after its end on the air (its watchdog no longer strikes in
between). LoRaWAN downlinks (``mac_rx``) are reported at once: TDMA uses the raw radio.

Fault injection (core/emulation.py's commands): Garbage (line noise), Reset (spontaneous
reboot: banner, unsaved configuration lost; or right after the next transmission started),
DropAnswers (the next n answer lines vanish; banners are not answers), Unplug (port closed,
power off, optional replug later), Replug (a power cycle), Silence (Silent Immediately, as a
DutyCycleReq 255 would). SetChannelRssi is refused: the module has no listen before talk and
its ``radio get rssi`` reports the last packet's RSSI.

Raw receive: ``radio rx 0`` listens until a frame arrives or the radio watchdog (``radio set
wdt``) expires with ``radio_err``; that is how a driver bounds a receive, since the seed's
command reference (DS40001784F as quoted in the thesis) has no ``radio rxstop``.

Modelling decisions (where the command reference is silent):

* ``radio tx``/``radio rx`` while the MAC is not paused answer ``busy`` ("The mac pause command
  must be called before any radio transmission or reception", 2.5.1/2.5.2 notes).
* A reboot (``sys reset``, injected reset, replug = power cycle) restores what ``mac save``
  stored - exactly the list of 2.4.4 (band, counters, dr, rx2, adr, EUIs, keys, devaddr,
  channels) - and defaults for everything else; the module is not joined afterwards.
* Duty cycle: each channel has a :class:`DutyCycleLedger` with the channel's ``dcycle`` setting
  X, i.e. 100/(X+1) % (2.4.8.19.2), T_off policy as LoRaWAN's; a ``mac tx`` that finds every
  enabled channel resting answers ``no_free_ch``. Raw ``radio tx`` is not limited ("the user
  has to make sure that duty cycle limits are not violated", 2.5.3 note).
* Receive windows open RECEIVE_DELAY1 (``mac set rxdelay1``) and +1 s after the uplink
  (2.4.8.13). The medium delivers a frame only at its end and says nothing while a preamble
  is on the air, so with ``rx_windows="full"`` (default) each window stays open until the
  largest downlink of its data rate could have ended: every downlink that starts in the window
  is received, but ``mac_tx_ok`` comes that much later than on a real module (EU868 default
  RX2, DR0: ~5.3 s after a DR5 uplink instead of ~2.1 s). ``rx_windows="detect"`` closes each
  window after the preamble-detection time: real ``mac_tx_ok`` timing, no downlinks.
* ``radio rx <n>`` accepts a frame that starts within n symbols; ``radio rx 0`` listens until a
  frame or the watchdog (``radio set wdt``, 0 = off). A frame with a bad CRC ends the reception
  with ``radio_err``. ``radio get rssi`` exists from firmware 1.0.5 on (older: invalid_param).
* FSK (``radio set mod fsk``) is accepted and timed, but FSK frames never reach the LoRa medium.
* ``sys eraseFW`` leaves the module silent (the bootloader protocol is not emulated).
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import itertools
import logging
import math
import random
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from lora_telemetry.core.emulation import (
    Accepted, Action, DeviceEvent, DropAnswers, RxEvent, Garbage, HostBytes, Listen,
    PowerOn, PowerOnMoment, Replug, ReplugPort, Reset, SetChannelRssi, Silence, Standby,
    StartTimer, TimerFired, ToHost, Transmit, TxDoneEvent, Unplug, UnplugPort,
    refuse_unsupported,
)
from lora_telemetry.core.dutycycle import DutyCycleLedger, SubBand
from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.core.lorawan import (
    build_data_frame,
    build_join_request,
    decrypt_frame_payload,
    decrypt_join_accept,
    derive_session_keys,
    parse_data_frame,
    verify_mic,
)
from lora_telemetry.core.latency import Latency
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.core.regions import EU433, EU868, Region
from lora_telemetry.radios.rn2483 import protocol as P
from lora_telemetry.radios.rn2483 import timing

__all__ = ["RN2483ModuleLogic", "MacState", "DEFAULT_BANNER_DATE", "TX_POWER_TABLE_DBM"]

log = logging.getLogger(__name__)

DEFAULT_FIRMWARE = "1.0.5"
DEFAULT_BANNER_DATE = "Oct 31 2018 15:06:52"
_BAND_REGIONS: dict[int, Region] = {868: EU868, 433: EU433}
_U32 = 0xFFFFFFFF

#: RN2483 datasheet Table 2-5 "Output power of TX power setting" (thesis ~10567-10610):
#: ``radio set pwr`` value -> typical output power in dBm, per band.
TX_POWER_TABLE_DBM: dict[int, dict[int, float]] = {
    868: {-3: -4.0, -2: -2.9, -1: -1.9, 0: -1.7, 1: -0.6, 2: 0.4, 3: 1.4, 4: 2.5, 5: 3.6,
          6: 4.7, 7: 5.8, 8: 6.9, 9: 8.1, 10: 9.3, 11: 10.4, 12: 11.6, 13: 12.5, 14: 13.5,
          15: 14.1},
    433: {-3: -3.5, -2: -2.3, -1: -1.3, 0: -2.3, 1: -1.2, 2: -0.1, 3: 1.0, 4: 2.1, 5: 3.2,
          6: 4.3, 7: 5.4, 8: 6.5, 9: 7.6, 10: 8.8, 11: 9.9, 12: 10.9, 13: 11.9, 14: 12.9,
          15: 13.6},
}

# MAC status register bits (Figure 2-1).
_ST_JOINED, _ST_AR, _ST_ADR, _ST_SILENT, _ST_PAUSED, _ST_LINKCHK = 0, 4, 5, 6, 7, 9


class MacState(enum.IntEnum):
    """The MAC state field of ``mac get status`` (Figure 2-1 note 2)."""

    IDLE = 0
    TX = 1
    BEFORE_RX1 = 2
    RX1 = 3
    BETWEEN = 4
    RX2 = 5
    ACK_TIMEOUT = 6


_IDLE, _TX, _BEFORE_RX1, _RX1, _BETWEEN, _RX2, _ACK_TIMEOUT = MacState
# Grace after a frame's time on air for the air's TxDoneEvent (a lost hub must not wedge).
_TX_DONE_GRACE_S = 0.5
_DEFAULT_GARBAGE = bytes((0x00, 0xFE, 0x13, 0x80, 0xFF)) + b"#~garbage\r\n"


@dataclass
class _Channel:
    freq: int = 0
    dcycle: int = 65535
    dr_min: int = 15
    dr_max: int = 15
    on: bool = False
    ledger: DutyCycleLedger | None = field(default=None, repr=False, compare=False)

    def rest_ledger(self, prescaler: int) -> DutyCycleLedger:
        if self.ledger is None:
            dc = 1.0 / ((self.dcycle + 1) * max(1, prescaler))
            self.ledger = DutyCycleLedger(
                [SubBand("channel", self.freq, self.freq + 1, dc, "mac set ch dcycle")],
                policy="toff",
            )
        return self.ledger


def _default_channels(band: int) -> list[_Channel]:
    """Table 2-10: channels 0-2 at the band's default frequencies, 3-15 undefined."""
    region = _BAND_REGIONS[band]
    chans = [_Channel(freq, 302, 0, 5, True) for freq in region.default_channels_hz]
    chans += [_Channel() for _ in range(16 - len(chans))]
    return chans


@dataclass
class _Mac:
    """LoRaWAN state; ``SAVED`` lists what ``mac save`` stores (2.4.4)."""

    band: int = 868
    channels: list[_Channel] = field(default_factory=lambda: _default_channels(868))
    dr: int = 5
    pwridx: int = 1
    adr: bool = False
    retx: int = 7
    rxdelay1: int = 1000
    ar: bool = False
    rx2_dr: int = 0
    rx2_freq: int = 869_525_000
    sync: int = 0x34
    upctr: int = 0
    dnctr: int = 0
    devaddr: int = 0
    deveui: int = 0
    appeui: int = 0
    nwkskey: bytes = bytes(16)
    appskey: bytes = bytes(16)
    appkey: bytes = bytes(16)
    keys_set: set[str] = field(default_factory=set)
    bat: int = 255
    linkchk: int = 0
    dcycleps: int = 1
    mrgn: int = 255
    gwnb: int = 0
    joined: bool = False
    silent: bool = False
    paused: bool = False
    state: MacState = MacState.IDLE

    SAVED = ("band", "upctr", "dnctr", "dr", "rx2_dr", "rx2_freq", "adr", "deveui", "appeui",
             "appkey", "nwkskey", "appskey", "devaddr", "channels", "keys_set")

    @classmethod
    def defaults(cls, band: int, deveui: int) -> "_Mac":
        region = _BAND_REGIONS[band]
        return cls(band=band, channels=_default_channels(band), rx2_dr=region.rx2_dr,
                   rx2_freq=region.rx2_frequency_hz, deveui=deveui)

    @property
    def region(self) -> Region:
        return _BAND_REGIONS[self.band]


@dataclass
class _RadioCfg:
    """``radio`` settings with the defaults of 2.5.5."""

    mod: str = "lora"
    freq: int = 868_100_000
    pwr: int = 1
    sf: int = 12
    bw: int = 125
    cr: int = 5
    prlen: int = 8
    crc: bool = True
    iqi: bool = False
    sync: str = "34"
    wdt: int = 15000
    bt: str = "0.5"
    afcbw: str = "41.7"
    rxbw: str = "25"
    bitrate: int = 50000
    fdev: int = 25000

    def phy(self) -> PhySettings:
        band = P.rf_port_band(self.freq)
        return PhySettings(
            frequency_hz=self.freq, sf=self.sf, bandwidth_hz=self.bw * 1000,
            coding_rate=self.cr, preamble_symbols=self.prlen, explicit_header=True,
            crc_on=self.crc, sync_word=int(self.sync[:2], 16), iq_inverted=self.iqi,
            tx_power_dbm=TX_POWER_TABLE_DBM[band][self.pwr],
        )

    def fsk_airtime(self, n: int) -> float:
        # preamble + 3-byte sync + length + payload + CRC, at the FSK bit rate
        return (self.prlen + 3 + 1 + n + 2) * 8 / self.bitrate


class _Timer:
    """A callback the logic asked the loop to wake it for (by ``key``)."""

    __slots__ = ("fn", "cancelled", "persistent", "key")

    def __init__(self, fn: Callable[[], None], persistent: bool, key: int) -> None:
        self.fn, self.cancelled, self.persistent, self.key = fn, False, persistent, key

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class _Uplink:
    frame: bytes
    payload: bytes
    port: int
    confirmed: bool
    fcnt: int
    retries_left: int
    dr: int


class RN2483ModuleLogic:
    """The RN2483 firmware (see the module docstring); `handle` is the device loop's entry."""

    power_on_at = PowerOnMoment.CREATED

    def __init__(
        self,
        name: str = "rn2483",
        *,
        firmware: str = DEFAULT_FIRMWARE,
        banner_date: str = DEFAULT_BANNER_DATE,
        hweui: int | None = None,
        band: int = 868,
        seed: int | None = None,
        rx_windows: str = "full",
        tx_latency: Latency = timing.TX_LATENCY,
        rx_latency: Latency = timing.RX_LATENCY,
    ) -> None:
        if band not in _BAND_REGIONS:
            raise ConfigError(f"RN2483 band must be 868 or 433, got {band!r}")
        if rx_windows not in ("full", "detect"):
            raise ConfigError(f"rx_windows must be 'full' or 'detect', got {rx_windows!r}")
        self.rx_windows = rx_windows
        self.name = name
        self.banner = f"RN2483 {firmware} {banner_date}"
        if P.parse_banner(self.banner) is None:
            raise ConfigError(f"bad RN2483 banner {self.banner!r} (firmware/date format)")
        self._fw = tuple(int(x) for x in firmware.split("."))
        # Microchip's OUI 00-04-A3 plus a per-name suffix: stable across runs.
        self.hweui = hweui if hweui is not None else (
            0x0004A30B00000000 | (zlib.crc32(name.encode()) & 0xFFFFFF)
        )
        self._rng = random.Random(seed)
        # Its own stream, so the latency draws leave the channel and nonce choices of a seed
        # as they were.
        self._latency_rng = random.Random(None if seed is None else f"rn2483-latency/{seed}")
        self.tx_latency, self.rx_latency = tx_latency, rx_latency
        self._timers: dict[int, _Timer] = {}
        self._timer_keys = itertools.count(1)
        self._now = 0.0
        self._out: list[Action] = []
        self._reset_on_tx = False
        self._inbuf = bytearray()
        self._drop = 0
        self._erased = False
        self._sleep_timer: _Timer | None = None
        self._tx_done: Callable[[float], None] | None = None
        self._tx_guard: _Timer | None = None
        self._rx_handler: Callable[[Any], bool] | None = None
        self._radio_busy = False
        self._radio_timer: _Timer | None = None
        self._last_snr = -128  # "Default: -128" (2.5.5.16)
        self._last_rssi = -128
        self._nvm: dict[int, int] = {}
        self._eeprom: dict[str, Any] | None = None
        self._saved_band = band
        self.mac = _Mac.defaults(band, self.hweui)
        self.radio = _RadioCfg()
        #: Every command line received (for tests and debugging), newest last.
        self.commands: deque[str] = deque(maxlen=4000)
        #: Every frame put on the air: (time, data, PhySettings).
        self.transmissions: deque[tuple[float, bytes, PhySettings]] = deque(maxlen=1000)
        self.stats: dict[str, int] = dict.fromkeys(
            ("commands", "answers", "dropped_answers", "garbage_injected", "reboots", "uplinks",
             "downlinks", "radio_tx", "radio_rx", "no_free_ch", "invalid_param", "unplugs",
             "resets"), 0)

    @property
    def counters(self) -> Mapping[str, int]:
        return self.stats

    # ------------------------------------------------------------------- the loop's entry
    def handle(self, event: DeviceEvent, now: float) -> list[Action]:
        """One event from the device loop; the module's actions (core/emulation.py)."""
        self._now = now
        self._out = []
        if isinstance(event, HostBytes):
            self._read_host(event.data)
        elif isinstance(event, RxEvent):
            handler = self._rx_handler
            if handler is not None:
                self._guarded(lambda: handler(event) and None)
        elif isinstance(event, TxDoneEvent):
            if self._tx_done is not None:
                done, self._tx_done = self._tx_done, None
                if self._tx_guard is not None:
                    self._tx_guard.cancel()
                self._guarded(lambda: done(event.t_end))
        elif isinstance(event, TimerFired):
            timer = self._timers.pop(event.key, None)  # type: ignore[call-overload]
            if timer is not None and not timer.cancelled:
                self._guarded(timer.fn)
        elif isinstance(event, PowerOn):
            self._write_line(self.banner)
        elif isinstance(event, (Reset, Garbage, DropAnswers, Unplug, Replug, Silence,
                                SetChannelRssi)):
            self._control(event)
        # TransmitFailed: the loop ends the frame after its time on air (lost, not timeless)
        out, self._out = self._out, []
        return out

    def _control(self, command: Any) -> None:
        if isinstance(command, Garbage):
            self.stats["garbage_injected"] += 1
            self._write(_DEFAULT_GARBAGE if command.data is None else bytes(command.data))
        elif isinstance(command, Reset):
            if command.during_next_tx:
                self._reset_on_tx = True
            else:
                self.stats["resets"] += 1
                self._reboot("injected reset")
        elif isinstance(command, DropAnswers):
            self._drop = self._drop + command.count if command.count > 0 else 0
        elif isinstance(command, Unplug):
            self.stats["unplugs"] += 1
            self._power_off()
            self._out.append(UnplugPort())
            if command.replug_after_s is not None:
                self._after(max(0.0, command.replug_after_s), self._replug, persistent=True)
        elif isinstance(command, Replug):
            self._replug()
        elif isinstance(command, Silence):
            self.mac.silent = command.on  # as a DutyCycleReq of 255 from the network would
        else:
            self._out += refuse_unsupported(
                "an RN2483", command, "it has no listen before talk; radio get rssi reports "
                "the last packet's RSSI")
            return
        self._out.append(Accepted())

    def _guarded(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except LoraTelemetryError as exc:  # a bug or an unexpected error: log, go on
            log.error("%s: %s", self.name, exc)
        except Exception:  # noqa: BLE001 - the module must survive anything the host sends
            log.exception("%s: internal error", self.name)

    # --------------------------------------------------------------------------- timers
    def _at(self, when: float, fn: Callable[[], None], persistent: bool = False) -> _Timer:
        timer = _Timer(fn, persistent, next(self._timer_keys))
        self._timers[timer.key] = timer
        self._out.append(StartTimer(timer.key, when))
        return timer

    def _after(self, delay: float, fn: Callable[[], None], persistent: bool = False) -> _Timer:
        return self._at(self._now + delay, fn, persistent)

    def _cancel_module_timers(self) -> None:
        """Power off: every timer but the persistent ones (a pending replug) is forgotten;
        the loop's still come back and are ignored."""
        for key, timer in list(self._timers.items()):
            if not timer.persistent:
                timer.cancel()
                del self._timers[key]

    # ------------------------------------------------------------------------- serial I/O
    def _write(self, data: bytes) -> None:
        self._out.append(ToHost(bytes(data)))

    def _write_line(self, text: str) -> None:
        self._write(text.encode("ascii") + P.EOL)

    def _answer(self, text: str) -> None:
        if self._drop > 0:
            self._drop -= 1
            self.stats["dropped_answers"] += 1
            return
        self.stats["answers"] += 1
        self._write_line(text)

    def _read_host(self, data: bytes) -> None:
        if self._erased or self._sleep_timer is not None:
            return  # firmware erased, or asleep: the UART is not listened to
        self._inbuf += data
        while True:
            nl = self._inbuf.find(b"\n")
            if nl < 0:
                if len(self._inbuf) > P.MAX_LINE:
                    self._inbuf.clear()
                    self._answer("invalid_param")
                return
            raw = bytes(self._inbuf[:nl]).rstrip(b"\r")
            del self._inbuf[:nl + 1]
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                text = None
            if text is None or len(text) > P.MAX_LINE or not text.isprintable():
                self._answer("invalid_param")
                continue
            self.commands.append(text)
            self.stats["commands"] += 1
            self._guarded(lambda: self._dispatch(text))
            if self._erased or self._sleep_timer is not None:
                self._inbuf.clear()
                return

    # --------------------------------------------------------------------------- the air
    def _transmit(self, data: bytes, phy: PhySettings, done: Callable[[float], None]) -> float:
        """Put ``data`` on the air once the firmware's command-to-air delay has passed
        (timing.TX_LATENCY, drawn per frame); ``done(t_end)`` when the air reports its end."""
        self._rx_handler = None  # the radio leaves RX for the transmission now
        airtime = phy.time_on_air(len(data))
        self._tx_done = done

        def key_on() -> None:
            if self._tx_done is not done:  # rebooted or powered off in between
                return
            start = self._now
            self.transmissions.append((start, data, phy))
            self._out.append(Transmit(data, phy, phy.tx_power_dbm))

            def guard() -> None:  # the air never reported the end (a lost hub): by the clock
                if self._tx_done is done:
                    self._tx_done = None
                    done(start + airtime)
            self._tx_guard = self._at(start + airtime + _TX_DONE_GRACE_S, guard)
            if self._reset_on_tx:
                self._reset_on_tx = False
                self.stats["resets"] += 1
                self._reboot("injected reset during a transmission")

        delay = self.tx_latency.draw(self._latency_rng)
        if delay > 0:
            self._after(delay, key_on)
        else:
            key_on()
        return airtime

    def _report_after_frame(self, t_end: float, report: Callable[[], None]) -> None:
        """Carry out ``report`` (the answer to ``radio rx``) once the firmware's air-to-host
        delay after the frame's end has passed (timing.RX_LATENCY, drawn per frame); it
        replaces the reception's watchdog, which must not strike in between."""
        if self._radio_timer is not None:
            self._radio_timer.cancel()
            self._radio_timer = None
        at = t_end + self.rx_latency.draw(self._latency_rng)
        if at <= self._now:
            report()
        else:
            self._radio_timer = self._at(at, report)

    def _listen(self, phy: PhySettings, handler: Callable[[Any], bool]) -> None:
        self._rx_handler = handler
        self._out.append(Listen(phy))

    def _standby(self) -> None:
        self._rx_handler = None
        self._out.append(Standby())

    # ----------------------------------------------------------------------- power / reboot
    def _power_off(self) -> None:
        self._cancel_module_timers()
        self._tx_done = None
        self._standby()
        self._radio_busy = False
        self._sleep_timer = None
        self._inbuf.clear()

    def _reboot(self, reason: str) -> None:
        """Restart: EEPROM-saved MAC parameters back, everything else to defaults, banner."""
        self.stats["reboots"] += 1
        log.info("%s: reboot (%s)", self.name, reason)
        self._power_off()
        self._drop = 0
        self.mac = _Mac.defaults(self._saved_band, self.hweui)
        if self._eeprom is not None:
            for key, value in copy.deepcopy(self._eeprom).items():
                setattr(self.mac, key, value)
        self.radio = _RadioCfg()
        self._last_snr = -128
        if not self._erased:
            self._write_line(self.banner)

    def _replug(self) -> None:
        self._out.append(ReplugPort())
        self._reboot("power cycle (replug)")

    # ---------------------------------------------------------------------------- dispatch
    def _dispatch(self, text: str) -> None:
        words = text.split(" ")
        if "" in words:  # "spaces must not be used in parameters" (2.1): no empty tokens
            return self._invalid()
        group = words[0]
        handler = {"sys": self._sys, "mac": self._mac_cmd, "radio": self._radio_cmd}.get(group)
        if handler is None or len(words) < 2:
            return self._invalid()
        handler(words[1:])

    def _invalid(self) -> None:
        self.stats["invalid_param"] += 1
        self._answer("invalid_param")

    # -------------------------------------------------------------------------------- sys
    def _sys(self, w: list[str]) -> None:
        cmd = w[0]
        if cmd == "reset" and len(w) == 1:
            return self._reboot("sys reset")
        if cmd == "factoryRESET" and len(w) == 1:
            self._eeprom, self._nvm, self._saved_band = None, {}, 868
            return self._reboot("sys factoryRESET")
        if cmd == "eraseFW" and len(w) == 1:
            self._erased = True  # "no response" (2.3.3); the bootloader takes over
            self._power_off()
            return None
        if cmd == "sleep" and len(w) == 2:
            try:
                ms = int(P.sys_sleep(w[1]).text.split(" ")[2])
            except P.RN2483ArgumentError:
                return self._invalid()

            def wake() -> None:
                self._sleep_timer = None
                self._answer("ok")  # "ok after the system gets back from Sleep mode"
            self._sleep_timer = self._after(ms / 1000.0, wake)
            return None
        if cmd == "get" and len(w) >= 2:
            return self._sys_get(w[1:])
        if cmd == "set" and len(w) >= 2:
            return self._sys_set(w[1:])
        return self._invalid()

    def _sys_get(self, w: list[str]) -> None:
        what = w[0]
        if what == "ver" and len(w) == 1:
            return self._answer(self.banner)
        if what == "hweui" and len(w) == 1:
            return self._answer(f"{self.hweui:016X}")
        if what == "vdd" and len(w) == 1:
            return self._answer("3300")
        if what == "nvm" and len(w) == 2:
            addr = self._hex_int(w[1], 0x300, 0x3FF)
            if addr is None:
                return self._invalid()
            return self._answer(f"{self._nvm.get(addr, 0xFF):02X}")
        if what in ("pindig", "pinana") and len(w) == 2 and self._pin_ok(w[1], what == "pinana"):
            return self._answer("0")
        return self._invalid()

    def _sys_set(self, w: list[str]) -> None:
        what = w[0]
        if what == "nvm" and len(w) == 3:
            addr, data = self._hex_int(w[1], 0x300, 0x3FF), self._hex_int(w[2], 0, 0xFF)
            if addr is None or data is None:
                return self._invalid()
            self._nvm[addr] = data
            return self._answer("ok")
        if what == "pinmode" and len(w) == 3 and self._pin_ok(w[1], False) and w[2] in (
            "digout", "digin", "ana"
        ):
            return self._answer("ok")
        if what == "pindig" and len(w) == 3 and self._pin_ok(w[1], False) and w[2] in ("0", "1"):
            return self._answer("ok")
        return self._invalid()

    @staticmethod
    def _pin_ok(pin: str, analog: bool) -> bool:
        if analog:
            return pin in {f"GPIO{i}" for i in (0, 1, 2, 3, *range(5, 14))}
        return pin in {f"GPIO{i}" for i in range(14)} | {"UART_CTS", "UART_RTS", "TEST0", "TEST1"}

    @staticmethod
    def _hex_int(text: str, lo: int, hi: int) -> int | None:
        if not text or len(text) > 8 or any(c not in "0123456789abcdefABCDEF" for c in text):
            return None
        value = int(text, 16)
        return value if lo <= value <= hi else None

    # -------------------------------------------------------------------------------- mac
    def _mac_cmd(self, w: list[str]) -> None:
        cmd, mac = w[0], self.mac
        if cmd == "reset" and len(w) == 2:
            if w[1] not in ("868", "433"):
                return self._invalid()
            paused = mac.paused
            self.mac = _Mac.defaults(int(w[1]), 0)  # "the device EUI ... set to all zeros"
            self.mac.paused = paused
            return self._answer("ok")
        if cmd == "tx" and len(w) == 4:
            return self._mac_tx(w[1], w[2], w[3])
        if cmd == "join" and len(w) == 2:
            return self._mac_join(w[1])
        if cmd == "save" and len(w) == 1:
            self._eeprom = {k: copy.deepcopy(getattr(mac, k)) for k in _Mac.SAVED}
            for ch in self._eeprom["channels"]:
                ch.ledger = None
            self._saved_band = mac.band
            return self._answer("ok")
        if cmd == "forceENABLE" and len(w) == 1:
            mac.silent = False
            return self._answer("ok")
        if cmd == "pause" and len(w) == 1:
            if mac.state != _IDLE:
                return self._answer("0")  # "'0' is returned when ... cannot be paused"
            mac.paused = True
            return self._answer(str(P.PAUSE_FOREVER_MS))
        if cmd == "resume" and len(w) == 1:
            mac.paused = False
            return self._answer("ok")
        if cmd == "set" and len(w) >= 3:
            return self._mac_set(w[1:])
        if cmd == "get" and len(w) >= 2:
            return self._mac_get(w[1:])
        return self._invalid()

    def _mac_set(self, w: list[str]) -> None:
        mac, param = self.mac, w[0]
        if param == "ch":
            return self._mac_set_ch(w[1:])
        value = " ".join(w[1:])
        try:
            text = P.validate_mac_set(param, value, mac.band)
        except P.RN2483ArgumentError:
            return self._invalid()
        if param in ("devaddr", "deveui", "appeui"):
            setattr(mac, param, int(text, 16))
            mac.keys_set.add(param)
        elif param in ("nwkskey", "appskey", "appkey"):
            setattr(mac, param, bytes.fromhex(text))
            mac.keys_set.add(param)
        elif param == "dr":
            dr = int(text)
            if not any(c.freq and c.dr_min <= dr <= c.dr_max for c in mac.channels):
                return self._invalid()  # "within the limits of the data rate range" (2.4.8.8)
            mac.dr = dr
        elif param in ("adr", "ar"):
            setattr(mac, param, text == "on")
        elif param == "rx2":
            dr, freq = text.split(" ")
            mac.rx2_dr, mac.rx2_freq = int(dr), int(freq)
        elif param == "sync":
            mac.sync = int(text, 16)
        else:  # pwridx, bat, retx, linkchk, rxdelay1, upctr, dnctr
            setattr(mac, param, int(text))
        return self._answer("ok")

    def _mac_set_ch(self, w: list[str]) -> None:
        if len(w) < 3:
            return self._invalid()
        param = w[0]
        try:
            text = P.validate_mac_set_ch(param, w[1], *w[2:])
        except P.RN2483ArgumentError:
            return self._invalid()
        parts = text.split(" ")
        ch = self.mac.channels[int(parts[0])]
        if param == "freq":
            ch.freq, ch.ledger = int(parts[1]), None
        elif param == "dcycle":
            ch.dcycle, ch.ledger = int(parts[1]), None
        elif param == "drrange":
            ch.dr_min, ch.dr_max = int(parts[1]), int(parts[2])
        else:
            on = parts[1] == "on"
            if on and (ch.freq == 0 or ch.dr_min > 7):
                return self._invalid()  # parameters must be set before enabling (2.4.8.19.4)
            ch.on = on
        return self._answer("ok")

    def _mac_get(self, w: list[str]) -> None:
        mac, param = self.mac, w[0]
        simple: dict[str, Callable[[], str]] = {
            "devaddr": lambda: f"{mac.devaddr:08X}", "deveui": lambda: f"{mac.deveui:016X}",
            "appeui": lambda: f"{mac.appeui:016X}", "dr": lambda: str(mac.dr),
            "band": lambda: str(mac.band), "pwridx": lambda: str(mac.pwridx),
            "adr": lambda: "on" if mac.adr else "off", "retx": lambda: str(mac.retx),
            "rxdelay1": lambda: str(mac.rxdelay1), "rxdelay2": lambda: str(mac.rxdelay1 + 1000),
            "ar": lambda: "on" if mac.ar else "off", "dcycleps": lambda: str(mac.dcycleps),
            "mrgn": lambda: str(mac.mrgn), "gwnb": lambda: str(mac.gwnb),
            "status": lambda: f"{self._status():08X}", "sync": lambda: f"{mac.sync:02X}",
            "upctr": lambda: str(mac.upctr & _U32), "dnctr": lambda: str(mac.dnctr),
        }
        if param in simple and len(w) == 1:
            return self._answer(simple[param]())
        if param == "rx2" and len(w) == 2 and w[1] in ("868", "433"):
            if int(w[1]) == mac.band:
                return self._answer(f"{mac.rx2_dr} {mac.rx2_freq}")
            region = _BAND_REGIONS[int(w[1])]
            return self._answer(f"{region.rx2_dr} {region.rx2_frequency_hz}")
        if param == "ch" and len(w) == 3 and w[2].isdecimal() and int(w[2]) <= 15:
            ch = mac.channels[int(w[2])]
            answers = {"freq": str(ch.freq), "dcycle": str(ch.dcycle),
                       "drrange": f"{ch.dr_min} {ch.dr_max}", "status": "on" if ch.on else "off"}
            if w[1] in answers:
                return self._answer(answers[w[1]])
        return self._invalid()

    def _status(self) -> int:
        mac = self.mac
        bits = (mac.joined << _ST_JOINED) | (mac.state << 1) | (mac.ar << _ST_AR)
        bits |= (mac.adr << _ST_ADR) | (mac.silent << _ST_SILENT) | (mac.paused << _ST_PAUSED)
        bits |= (bool(mac.linkchk) << _ST_LINKCHK)
        return bits

    # --------------------------------------------------------------------- LoRaWAN uplinks
    def _free_channel(self, airtime: float, dr: int) -> tuple[int, _Channel] | None:
        now = self._now
        free = [
            (i, ch) for i, ch in enumerate(self.mac.channels)
            if ch.on and ch.freq and ch.dr_min <= dr <= ch.dr_max
            and ch.rest_ledger(self.mac.dcycleps).can_send(ch.freq, airtime, now)
        ]
        return self._rng.choice(free) if free else None

    def _next_free_time(self, airtime: float, dr: int) -> float | None:
        now = self._now
        times = [ch.rest_ledger(self.mac.dcycleps).next_allowed(ch.freq, airtime, now)
                 for ch in self.mac.channels
                 if ch.on and ch.freq and ch.dr_min <= dr <= ch.dr_max]
        return min(times) if times else None

    def _uplink_phy(self, freq: int, dr: int) -> PhySettings:
        region = self.mac.region
        phy = region.phy(dr, freq, uplink=True, tx_power_dbm=region.tx_power(self.mac.pwridx))
        return dataclasses.replace(phy, sync_word=self.mac.sync)

    def _downlink_phy(self, freq: int, dr: int) -> PhySettings:
        phy = self.mac.region.phy(dr, freq, uplink=False)
        return dataclasses.replace(phy, sync_word=self.mac.sync)

    def _mac_ready(self, need_joined: bool) -> str | None:
        mac = self.mac
        if mac.paused:
            return "mac_paused"
        if need_joined and not mac.joined:
            return "not_joined"
        if mac.silent:
            return "silent"
        if mac.state != _IDLE:
            return "busy"
        return None

    def _mac_tx(self, kind: str, port_text: str, hex_text: str) -> None:
        mac = self.mac
        kind = kind.lower()
        data = P.parse_hex_data(hex_text, min_bytes=1)
        if kind not in ("cnf", "uncnf") or not port_text.isdecimal() or not (
            1 <= int(port_text) <= 223
        ) or data is None:
            return self._invalid()
        refusal = self._mac_ready(need_joined=True)
        if refusal is None and mac.upctr > _U32:
            refusal = "frame_counter_err_rejoin_needed"
        if refusal is None and len(data) > mac.region.max_app_payload(mac.dr):
            refusal = "invalid_data_len"
        if refusal is not None:
            return self._answer(refusal)
        if not mac.region.data_rate(mac.dr).is_lora:
            return self._answer("invalid_param")  # DR7 (FSK) is not emulated
        airtime = self._uplink_phy(mac.region.default_channels_hz[0], mac.dr).time_on_air(
            len(data) + 13)
        chosen = self._free_channel(airtime, mac.dr)
        if chosen is None:
            self.stats["no_free_ch"] += 1
            return self._answer("no_free_ch")
        fcnt = mac.upctr
        frame = build_data_frame(mac.devaddr, fcnt, data, nwkskey=mac.nwkskey,
                                 appskey=mac.appskey, fport=int(port_text),
                                 confirmed=kind == "cnf", adr=mac.adr)
        mac.upctr += 1
        self._answer("ok")
        op = _Uplink(frame, data, int(port_text), kind == "cnf", fcnt,
                     mac.retx if kind == "cnf" else 0, mac.dr)
        self._send_uplink(op, chosen[1])

    def _send_uplink(self, op: _Uplink, ch: _Channel) -> None:
        mac = self.mac
        phy = self._uplink_phy(ch.freq, op.dr)
        airtime = phy.time_on_air(len(op.frame))
        ch.rest_ledger(mac.dcycleps).record(ch.freq, self._now, airtime)
        mac.state = _TX
        self.stats["uplinks"] += 1
        self._transmit(op.frame, phy, lambda t_end: self._uplink_sent(op, ch, t_end))

    def _uplink_sent(self, op: _Uplink, ch: _Channel, t_end: float) -> None:
        mac = self.mac
        region = mac.region
        rx1_open = t_end + mac.rxdelay1 / 1000.0
        rx2_open = rx1_open + 1.0
        mac.state = _BEFORE_RX1
        rx1 = self._downlink_phy(ch.freq, region.rx1_dr(op.dr, 0))
        rx2 = self._downlink_phy(mac.rx2_freq, mac.rx2_dr)

        def rx2_window() -> None:
            self._rx_window(rx2, mac.rx2_dr, rx2_open, math.inf, _RX2,
                            lambda ev: self._downlink(op, ev), lambda: self._no_downlink(op))

        def rx1_closed() -> None:
            mac.state = _BETWEEN
            rx2_window()
        self._rx_window(rx1, region.rx1_dr(op.dr, 0), rx1_open, rx2_open - 0.02, _RX1,
                        lambda ev: self._downlink(op, ev), rx1_closed)

    def _rx_window(self, phy: PhySettings, dr: int, open_t: float, latest_close: float,
                   state: int, on_frame: Callable[[Any], bool],
                   on_close: Callable[[], None]) -> None:
        """Listen from ``open_t``; accept frames that start within the preamble-detection
        window and may last as long as the largest downlink of ``dr``."""
        detect = (phy.preamble_symbols + 4.25) * phy.symbol_time + 0.02
        max_len = self.mac.region.max_payload_size(dr).phy_payload
        longest = phy.time_on_air(max_len) if self.rx_windows == "full" else 0.0
        close_t = min(open_t + detect + longest, latest_close)
        closer: list[_Timer] = []

        def handler(ev: Any) -> bool:
            if not open_t - 0.05 <= float(ev.t_start) <= open_t + detect:
                return False
            if not on_frame(ev):
                return False
            for timer in closer:
                timer.cancel()
            return True

        def opened() -> None:
            self.mac.state = state
            self._listen(phy, handler)

        def closed() -> None:
            self._standby()
            on_close()
        self._at(open_t - 0.01, opened)
        closer.append(self._at(close_t, closed))

    def _downlink(self, op: _Uplink, ev: Any) -> bool:
        """A frame heard in a receive window: accept it if it is our valid downlink."""
        mac = self.mac
        try:
            frame = parse_data_frame(bytes(ev.data))
        except LoraTelemetryError:
            return False
        if frame.uplink or frame.dev_addr != mac.devaddr:
            return False
        fcnt32 = (mac.dnctr & ~0xFFFF) | frame.fcnt
        if fcnt32 < mac.dnctr:
            fcnt32 += 0x10000
        if fcnt32 > _U32 or not verify_mic(frame, mac.nwkskey, fcnt32):
            return False
        mac.dnctr = fcnt32 + 1
        self._standby()
        self.stats["downlinks"] += 1
        self._mac_commands(frame.fopts)
        payload = decrypt_frame_payload(frame, nwkskey=mac.nwkskey, appskey=mac.appskey,
                                        fcnt32=fcnt32) or b""
        if frame.fport == 0:
            self._mac_commands(payload)
        mac.state = _IDLE
        if frame.fport and payload:
            self._answer(f"mac_rx {frame.fport} {payload.hex().upper()}")
        elif op.confirmed and not frame.fctrl.ack:
            mac.state = _RX2
            self._no_downlink(op)
        else:
            self._answer("mac_tx_ok")
        return True

    def _mac_commands(self, data: bytes) -> None:
        """The one MAC command with a visible effect here: DutyCycleReq MaxDCycle 255 ->
        Silent Immediately (2.4.5). Others are skipped by their sizes (LoRaWAN 1.0 5.)."""
        sizes = {0x02: 2, 0x03: 4, 0x04: 1, 0x05: 4, 0x06: 0, 0x07: 5, 0x08: 1}
        i = 0
        while i < len(data):
            cid = data[i]
            if cid not in sizes or i + 1 + sizes[cid] > len(data):
                return
            if cid == 0x04:
                if data[i + 1] == 255:
                    self.mac.silent = True
                else:
                    self.mac.dcycleps = 1 << (data[i + 1] & 0x0F)
                    for ch in self.mac.channels:
                        ch.ledger = None
            i += 1 + sizes[cid]

    def _no_downlink(self, op: _Uplink) -> None:
        mac = self.mac
        if not op.confirmed:
            mac.state = _IDLE
            return self._answer("mac_tx_ok")
        if op.retries_left <= 0:
            mac.state = _IDLE
            return self._answer("mac_err")  # "ACK not received back from the server"
        op.retries_left -= 1
        mac.state = _ACK_TIMEOUT
        self._after(2.0 + self._rng.uniform(-1.0, 1.0), lambda: self._retransmit(op))

    def _retransmit(self, op: _Uplink) -> None:
        airtime = self._uplink_phy(self.mac.region.default_channels_hz[0], op.dr).time_on_air(
            len(op.frame))
        chosen = self._free_channel(airtime, op.dr)
        if chosen is not None:
            return self._send_uplink(op, chosen[1])
        when = self._next_free_time(airtime, op.dr)
        if when is None:  # every channel was switched off meanwhile
            self.mac.state = _IDLE
            return self._answer("mac_err")
        # "the stack will wait for the first channel that will become free" (2.4.8.14 note)
        self._at(when + 0.001, lambda: self._retransmit(op))

    # ---------------------------------------------------------------------------- join
    def _mac_join(self, mode: str) -> None:
        mac, mode = self.mac, mode.lower()
        if mode not in ("otaa", "abp"):
            return self._invalid()
        needed = {"abp": {"devaddr", "nwkskey", "appskey"},
                  "otaa": {"deveui", "appeui", "appkey"}}[mode]
        if not needed <= mac.keys_set:
            return self._answer("keys_not_init")
        refusal = self._mac_ready(need_joined=False)
        if refusal is not None:
            return self._answer(refusal)
        if mode == "abp":
            self._answer("ok")
            mac.joined = True
            return self._answer("accepted")
        dev_nonce = self._rng.randrange(0x10000)
        frame = build_join_request(mac.appkey, mac.appeui, mac.deveui, dev_nonce)
        airtime = self._uplink_phy(mac.region.default_channels_hz[0], mac.dr).time_on_air(
            len(frame))
        chosen = self._free_channel(airtime, mac.dr)
        if chosen is None:
            return self._answer("no_free_ch")
        self._answer("ok")
        mac.joined = False
        ch = chosen[1]
        phy = self._uplink_phy(ch.freq, mac.dr)
        ch.rest_ledger(mac.dcycleps).record(ch.freq, self._now, airtime)
        mac.state = _TX
        self._transmit(frame, phy, lambda t_end: self._join_sent(ch, dev_nonce, t_end))

    def _join_sent(self, ch: _Channel, dev_nonce: int, t_end: float) -> None:
        mac, region = self.mac, self.mac.region
        open1 = t_end + region.join_accept_delay1_s
        open2 = t_end + region.join_accept_delay2_s
        rx1 = self._downlink_phy(ch.freq, region.rx1_dr(mac.dr, 0))
        rx2 = self._downlink_phy(mac.rx2_freq, mac.rx2_dr)

        def accept(ev: Any) -> bool:
            try:
                ja = decrypt_join_accept(bytes(ev.data), mac.appkey)
            except LoraTelemetryError:
                return False
            if not ja.mic_valid:
                return False
            keys = derive_session_keys(mac.appkey, ja.app_nonce, ja.net_id, dev_nonce)
            mac.devaddr, mac.nwkskey, mac.appskey = ja.dev_addr, keys.nwkskey, keys.appskey
            mac.upctr = mac.dnctr = 0
            mac.rx2_dr = ja.rx2_data_rate
            mac.rxdelay1 = max(1, ja.rx_delay) * 1000
            for i, freq in enumerate(ja.cf_list_frequencies_hz):
                if freq and 3 + i < 16:
                    mac.channels[3 + i] = _Channel(freq, 302, 0, 5, True)
            mac.joined, mac.state = True, _IDLE
            self._standby()
            self._answer("accepted")
            return True

        def denied() -> None:
            mac.state = _IDLE
            self._answer("denied")

        self._rx_window(rx1, region.rx1_dr(mac.dr, 0), open1, open2 - 0.02, _RX1, accept,
                        lambda: self._rx_window(rx2, mac.rx2_dr, open2, math.inf, _RX2, accept,
                                                denied))

    # ------------------------------------------------------------------------------- radio
    def _radio_cmd(self, w: list[str]) -> None:
        cmd = w[0]
        if cmd == "tx" and len(w) == 2:
            return self._radio_tx(w[1])
        if cmd == "rx" and len(w) == 2:
            return self._radio_rx(w[1])
        if cmd == "cw" and len(w) == 2 and w[1].lower() in ("on", "off"):
            if w[1].lower() == "off":
                return self._reboot("radio cw off")  # "semantically identical to sys reset"
            return self._answer("ok")
        if cmd == "set" and len(w) == 3:
            return self._radio_set(w[1], w[2])
        if cmd == "get" and len(w) == 2:
            return self._radio_get(w[1])
        return self._invalid()

    def _radio_set(self, param: str, value: str) -> None:
        try:
            text = P.validate_radio_set(param, value)
        except P.RN2483ArgumentError:
            return self._invalid()
        r = self.radio
        if param == "sf":
            r.sf = int(text[2:])
        elif param == "cr":
            r.cr = int(text[2:])
        elif param in ("crc", "iqi"):
            setattr(r, param, text == "on")
        elif param in ("freq", "pwr", "bw", "prlen", "wdt", "bitrate", "fdev"):
            setattr(r, param, int(text))
        else:  # mod, sync, bt, afcbw, rxbw
            setattr(r, param, text)
        return self._answer("ok")

    def _radio_get(self, param: str) -> None:
        r = self.radio
        answers: dict[str, Callable[[], str]] = {
            "bt": lambda: r.bt, "mod": lambda: r.mod, "freq": lambda: str(r.freq),
            "pwr": lambda: str(r.pwr), "sf": lambda: f"sf{r.sf}", "afcbw": lambda: r.afcbw,
            "rxbw": lambda: r.rxbw, "bitrate": lambda: str(r.bitrate), "fdev": lambda: str(r.fdev),
            "prlen": lambda: str(r.prlen), "crc": lambda: "on" if r.crc else "off",
            "iqi": lambda: "on" if r.iqi else "off", "cr": lambda: f"4/{r.cr}",
            "wdt": lambda: str(r.wdt), "bw": lambda: str(r.bw), "snr": lambda: str(self._last_snr),
            "sync": lambda: r.sync,
        }
        if self._fw >= (1, 0, 5):
            answers["rssi"] = lambda: str(self._last_rssi)
        if param not in answers:
            return self._invalid()
        return self._answer(answers[param]())

    def _radio_ready(self) -> bool:
        if not self.mac.paused or self._radio_busy or self.mac.state != _IDLE:
            self._answer("busy")
            return False
        return True

    def _radio_done(self, answer: str) -> None:
        self._radio_busy = False
        if self._radio_timer is not None:
            self._radio_timer.cancel()
            self._radio_timer = None
        self._answer(answer)

    def _radio_tx(self, hex_text: str) -> None:
        data = P.parse_hex_data(hex_text, min_bytes=1, max_bytes=255)
        fsk = self.radio.mod == "fsk"
        if data is None or (fsk and len(data) > 64):
            return self._invalid()
        if not self._radio_ready():
            return None
        self._answer("ok")
        self._radio_busy = True
        self.stats["radio_tx"] += 1
        wdt = self.radio.wdt / 1000.0
        airtime = self.radio.fsk_airtime(len(data)) if fsk else self.radio.phy().time_on_air(
            len(data))
        if wdt and airtime > wdt:
            # The watchdog would cut the frame: nothing usable reaches the air (2.5.2).
            self._radio_timer = self._after(wdt, lambda: self._radio_done("radio_err"))
            return None
        if fsk:
            self._radio_timer = self._after(airtime, lambda: self._radio_done("radio_tx_ok"))
            return None
        self._transmit(data, self.radio.phy(), lambda _t: self._radio_done("radio_tx_ok"))
        return None

    def _radio_rx(self, window_text: str) -> None:
        if not window_text.isdecimal() or int(window_text) > 65535:
            return self._invalid()
        if not self._radio_ready():
            return None
        self._answer("ok")
        self._radio_busy = True
        window = int(window_text)
        opened = self._now
        wdt = self.radio.wdt / 1000.0
        limits = [wdt] if wdt else []
        if self.radio.mod == "fsk":
            if window:
                limits.append(window / 1000.0)  # FSK: the window is in ms (2.5.1)
            if limits:
                self._radio_timer = self._after(min(limits), self._rx_timeout)
            return None
        phy = self.radio.phy()
        detect = window * phy.symbol_time
        if window:
            limits.append(detect + phy.time_on_air(255))

        def handler(ev: Any) -> bool:
            if window and float(ev.t_start) > opened + detect:
                return False
            self._standby()
            self._last_snr = max(-128, min(127, round(float(ev.snr_db))))
            self._last_rssi = round(float(ev.rssi_dbm))
            if phy.crc_on and not ev.crc_ok:
                answer = "radio_err"
            else:
                self.stats["radio_rx"] += 1
                answer = P.radio_rx_report(ev.data)
            self._report_after_frame(float(ev.t_end), lambda: self._radio_done(answer))
            return True
        self._listen(phy, handler)
        if limits:
            self._radio_timer = self._after(min(limits), self._rx_timeout)
        return None

    def _rx_timeout(self) -> None:
        self._standby()
        self._radio_done("radio_err")
