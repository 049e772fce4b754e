"""Microchip RN2483 driver: LoRaWAN (ABP) and raw-radio (P2P) modes over a serial port.

The protocol logic is :mod:`lora_telemetry.radios.rn2483.protocol` (sans-I/O); this module only
moves bytes through :class:`SerialTransport` and decides what to do about what comes back.

Recovery rules (every wait is bounded; nothing here hangs or crashes on bad input):

* **Garbage** lines (noise, late answers to abandoned commands) are counted in ``stats()`` and
  otherwise ignored; a command whose answer never comes raises :class:`RadioTimeout`, and the
  next command first drains the port so a late answer cannot be taken for its own.
* **Module reset.** A version banner nobody asked for means the module rebooted and lost its
  unsaved configuration. The driver re-applies the last configuration (LoRaWAN set-up with the
  tracked uplink counter, then the P2P radio settings) *automatically before the next command*.
  What happens to the command that was running when the banner arrived:

  - configuration and queries (``configure``, ``lorawan_setup``, ``radio get``...) are
    idempotent: the driver re-applies the configuration and repeats them; the caller sees no
    error (``stats()["resets_detected"]`` and ``["reconfigurations"]`` count it);
  - ``receive`` returns None (the listening window was lost) after re-applying;
  - ``send`` and ``mac_tx`` raise :class:`ModuleReset` - the frame may or may not have gone
    out, and repeating it could duplicate it. The next call works normally, and the LoRaWAN
    frame counter continues from the driver's count (``mac set upctr``), never going backwards.

* **Port loss** raises :class:`RadioDisconnected`; :meth:`RN2483Radio.reconnect` opens the port
  again (waiting for it to reappear), checks the module and re-applies the configuration.

Not thread-safe: one thread per radio (see :class:`Radio`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.lorawan import format_dev_addr, parse_dev_addr, parse_key
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.core.regions import EU433, EU868, Region
from lora_telemetry.radios.rn2483 import protocol as P
from lora_telemetry.radios.base import (
    AbpSession,
    ModuleLoRaWAN,
    RawRadio,
    ModuleReset,
    NoSuchDevice,
    Radio,
    RadioBusy,
    RadioDisconnected,
    RadioError,
    RadioTimeout,
    RxFrame,
    TxResult,
    UplinkResult,
)
from lora_telemetry.radios.rn2483.protocol import (
    Accepted,
    Command,
    Completed,
    Downlink,
    Failed,
    Garbage,
    InvalidParam,
    MacPaused,
    RadioOperationFailed,
    ResetDetected,
    TimedOut,
    UnsolicitedDownlink,
    Version,
)
from lora_telemetry.radios.serial_transport import SerialTransport

__all__ = ["RN2483Radio", "LoRaWANConfig", "MacTxResult", "RN2483Stats", "Downlink",
           "BAND_REGIONS", "p2p_commands"]

log = logging.getLogger(__name__)

#: ``mac reset <band>`` -> the LoRaWAN region whose default channels and DRs it loads.
BAND_REGIONS: dict[int, Region] = {868: EU868, 433: EU433}
#: Radio watchdog after a reset: "Default: 15000" ms (command reference 2.5.5.14).
DEFAULT_WDT_MS = 15000
#: LoRaWAN overhead around the application payload: MHDR 1 + FHDR 7 + FPort 1 + MIC 4 bytes.
_LORAWAN_OVERHEAD = 13
#: ACK_TIMEOUT 2 s +/- 1 s before a confirmed uplink is repeated (LoRaWAN 1.0, 7.1.9).
_ACK_TIMEOUT_MAX_S = 3.0


@dataclass
class RN2483Stats:
    """Counters for diagnostics: everything odd the link saw, and how it was handled."""

    commands: int = 0
    garbage_lines: int = 0
    garbage_bytes: int = 0
    overlong_lines: int = 0
    timeouts: int = 0
    resets_detected: int = 0
    reconfigurations: int = 0
    disconnects: int = 0
    reconnects: int = 0
    rx_timeouts: int = 0
    unsolicited_downlinks: int = 0


#: Watchdog time a transmission needs beyond its airtime (the answer's serial time and the
#: firmware's own; generous).
TX_WDT_MARGIN_MS = 50

#: A finished ``mac tx`` (2.4.2): the capability's UplinkResult.
MacTxResult = UplinkResult


@dataclass(frozen=True)
class LoRaWANConfig:
    """The ABP set-up of :meth:`RN2483Radio.lorawan_setup`, validated."""

    band: int
    frequency_hz: int
    dr: int
    pwridx: int
    devaddr: int
    nwkskey: bytes = dataclasses.field(repr=False)
    appskey: bytes = dataclasses.field(repr=False)
    dcycle: int
    rxdelay1_ms: int | None = None
    rx2: tuple[int, int] | None = None
    retx: int | None = None
    adr: bool | None = None
    sync: int | None = None

    def __post_init__(self) -> None:
        if self.band not in BAND_REGIONS or isinstance(self.band, bool):
            raise ConfigError(f"RN2483 band must be 868 or 433, got {self.band!r}")
        region = self.region
        P.check_frequency(self.frequency_hz, "LoRaWAN channel frequency")
        region.check_frequency(self.frequency_hz)
        if isinstance(self.dr, bool) or not isinstance(self.dr, int) or not 0 <= self.dr <= 7:
            raise ConfigError(f"data rate must be 0..7, got {self.dr!r}")
        if not region.data_rate(self.dr).is_lora:
            raise ConfigError(f"DR{self.dr} is FSK on {region.name}: only LoRa data rates here")
        P.validate_mac_set("pwridx", self.pwridx, self.band)
        P.validate_mac_set_ch("dcycle", 0, self.dcycle)
        if self.rxdelay1_ms is not None:
            P.validate_mac_set("rxdelay1", self.rxdelay1_ms)
        if self.rx2 is not None:
            P.validate_mac_set("rx2", tuple(self.rx2))
            region.check_frequency(self.rx2[1])
            if not region.data_rate(self.rx2[0]).is_lora:
                raise ConfigError(f"RX2 DR{self.rx2[0]} is not a LoRa data rate")
        if self.retx is not None:
            P.validate_mac_set("retx", self.retx)
        if self.sync is not None:
            P.validate_mac_set("sync", self.sync)

    @property
    def region(self) -> Region:
        return BAND_REGIONS[self.band]

    @property
    def duty_cycle(self) -> float:
        """"<dutyCycle> = (100/X) - 1" (command reference 2.4.8.19.2): X% = 100/(value+1)."""
        return 1.0 / (self.dcycle + 1)

    def uplink_phy(self) -> PhySettings:
        return self.region.phy(self.dr, self.frequency_hz, uplink=True,
                               tx_power_dbm=self.region.tx_power(self.pwridx))

    def rx2_phy(self) -> PhySettings:
        dr, freq = self.rx2 if self.rx2 is not None else (self.region.rx2_dr,
                                                          self.region.rx2_frequency_hz)
        return self.region.phy(dr, freq, uplink=False)

    def channel_plan(self) -> list[Command]:
        """Single-channel gateway plan: one channel on, every other default channel off."""
        defaults = self.region.default_channels_hz
        if self.frequency_hz in defaults:
            k = defaults.index(self.frequency_hz)
            cmds = [P.mac_set_ch("status", i, False) for i in range(len(defaults)) if i != k]
            cmds.append(P.mac_set_ch("dcycle", k, self.dcycle))
            if self.dr > 5:  # default channels allow DR0-5 (Table 2-10)
                cmds.append(P.mac_set_ch("drrange", k, 0, self.dr))
            return cmds
        # Parameters before status on: "<ChannelId> parameters ... must be issued prior to
        # enabling the status of that channel" (2.4.8.19.4 warning).
        return [
            P.mac_set_ch("freq", 3, self.frequency_hz),
            P.mac_set_ch("dcycle", 3, self.dcycle),
            P.mac_set_ch("drrange", 3, 0, max(5, self.dr)),
            P.mac_set_ch("status", 3, True),
        ] + [P.mac_set_ch("status", i, False) for i in range(len(defaults))]

    def commands(self, *, upctr: int | None, save: bool) -> list[Command]:
        """The set-up sequence, in the thesis end-node program's order (thesis ~8880-8990)."""
        cmds = [P.mac_reset(self.band), *self.channel_plan(),
                P.mac_set("dr", self.dr),
                P.mac_set("pwridx", self.pwridx, band=self.band),
                P.mac_set("devaddr", format_dev_addr(self.devaddr)),
                P.mac_set("appskey", self.appskey),
                P.mac_set("nwkskey", self.nwkskey)]
        if self.rxdelay1_ms is not None:
            cmds.append(P.mac_set("rxdelay1", self.rxdelay1_ms))
        if self.rx2 is not None:
            cmds.append(P.mac_set("rx2", tuple(self.rx2)))
        if self.retx is not None:
            cmds.append(P.mac_set("retx", self.retx))
        if self.adr is not None:
            cmds.append(P.mac_set("adr", self.adr))
        if self.sync is not None:
            cmds.append(P.mac_set("sync", self.sync))
        if upctr is not None:
            cmds.append(P.mac_set("upctr", upctr))
        if save:
            cmds.append(P.mac_save())
        cmds.append(P.mac_join("abp"))
        return cmds

    def mac_tx_timeout(self, airtime_s: float, confirmed: bool) -> float:
        """A bound on the wait for ``mac tx``'s second answer: the frame, both receive windows
        (RX2 opens RECEIVE_DELAY1 + 1 s after the uplink, 2.4.8.13) long enough for the largest
        downlink, and for confirmed frames every retransmission with its ACK_TIMEOUT and the
        channel's duty-cycle rest."""
        rx1 = (self.rxdelay1_ms if self.rxdelay1_ms is not None else 1000) / 1000.0
        rx2_phy = self.rx2_phy()
        rx2_dr = self.rx2[0] if self.rx2 is not None else self.region.rx2_dr
        max_dl = rx2_phy.time_on_air(self.region.max_payload_size(rx2_dr).phy_payload)
        per_attempt = airtime_s + rx1 + 1.0 + max_dl + 1.0
        if not confirmed:
            return per_attempt + 1.0
        attempts = (self.retx if self.retx is not None else 7) + 1
        return attempts * (per_attempt + _ACK_TIMEOUT_MAX_S + airtime_s * self.dcycle) + 1.0


def p2p_commands(phy: PhySettings) -> list[Command]:
    """``radio set`` commands for ``phy``; ConfigError for what an RN2483 cannot do."""
    if not phy.explicit_header:
        raise ConfigError("RN2483 radio commands have no implicit-header mode")
    if phy.bandwidth_hz not in (125_000, 250_000, 500_000):
        raise ConfigError(
            f"RN2483 LoRa bandwidth must be 125, 250 or 500 kHz (2.5.4.16), got "
            f"{phy.bandwidth_hz / 1000:g} kHz"
        )
    if phy.ldro != "auto":
        raise ConfigError("RN2483 sets low-data-rate optimisation itself: use ldro='auto'")
    cmds = [
        P.radio_set("mod", "lora"),
        P.radio_set("freq", phy.frequency_hz),
        P.radio_set("sf", phy.sf),
        P.radio_set("bw", phy.bandwidth_hz // 1000),
        P.radio_set("cr", phy.coding_rate),
        P.radio_set("prlen", phy.preamble_symbols),
        P.radio_set("crc", phy.crc_on),
        P.radio_set("iqi", phy.iq_inverted),
        P.radio_set("sync", phy.sync_word),
    ]
    if phy.tx_power_dbm is not None:
        power = round(phy.tx_power_dbm)
        cmds.append(P.radio_set("pwr", power))
    return cmds


class RN2483Radio(RawRadio, ModuleLoRaWAN):
    """An RN2483 on a serial port (57600 8N1, CRLF)."""

    def __init__(
        self,
        port: str,
        baudrate: int = P.BAUDRATE,
        *,
        command_timeout: float = 1.5,
        probe: bool = True,
        transport: SerialTransport | None = None,
    ) -> None:
        self.port = port
        self.command_timeout = command_timeout
        self._transport = transport or SerialTransport(port, baudrate)
        self._proto = P.RN2483Protocol()
        self._stats = RN2483Stats()
        self.version: Version | None = None
        self.name = f"RN2483 on {port}"
        self._phy: PhySettings | None = None
        self._lorawan: LoRaWANConfig | None = None
        self._p2p_cmds: list[Command] = []
        self._mode: str | None = None  # None, "lorawan" or "p2p"
        self._upctr: int | None = None
        self._wdt_ms = DEFAULT_WDT_MS
        self._paused_until = 0.0  # monotonic end of the current `mac pause`
        self._rssi_supported: bool | None = None
        self._needs_reapply = False
        self._reapplying = False
        self._resync = True  # drain the port before the first command
        self._closed = False
        self._downlinks: deque[Downlink] = deque(maxlen=64)
        self._transport.open()
        if probe:
            try:
                self._probe()
            except Exception:
                self._transport.close()
                raise

    # ------------------------------------------------------------------------- Radio interface
    @property
    def phy(self) -> PhySettings | None:
        return self._phy

    @property
    def mode(self) -> str | None:
        return self._mode

    @property
    def upctr(self) -> int | None:
        """The uplink frame counter the next ``mac_tx`` will use, as the driver tracks it
        (persist it and pass it to ``lorawan_setup(upctr=...)`` after a restart)."""
        return self._upctr

    @property
    def lorawan_config(self) -> LoRaWANConfig | None:
        return self._lorawan

    def configure(self, phy: PhySettings) -> None:
        """Raw-radio (P2P) mode: ``mac pause``, then ``radio set`` for every field of ``phy``."""
        cmds = p2p_commands(phy)
        self._run_sequence(lambda: self._apply_p2p(cmds))
        self._phy = phy
        self._p2p_cmds = cmds
        self._mode = "p2p"

    def send(self, data: bytes, timeout: float | None = None) -> TxResult:
        """``radio tx <hex>`` then ``radio_tx_ok``; ModuleReset if the module rebooted meanwhile."""
        phy = self._require_phy()
        cmd = P.radio_tx(data)
        airtime = phy.time_on_air(len(data))
        self._ensure_p2p()
        # The watchdog (2.5.4.19) bounds transmissions too: it must outlast the frame.
        # receive() puts it back after a short window, so this is rarely needed (TDMA
        # listens, then sends: a `radio set wdt` here would delay the frame past its slot).
        need = math.ceil(airtime * 1000) + TX_WDT_MARGIN_MS
        if self._wdt_ms != 0 and self._wdt_ms < need:  # the watchdog would cut the frame
            self._set_wdt(max(need, DEFAULT_WDT_MS))
        started = time.time()
        self._transact(cmd, final_timeout=timeout if timeout is not None else airtime + 2.0)
        return TxResult(airtime_s=airtime, started=started, finished=time.time())

    def receive(self, timeout: float) -> RxFrame | None:
        """``radio rx 0`` bounded by the radio watchdog (``radio set wdt`` = ``timeout``)."""
        phy = self._require_phy()
        if not timeout > 0:
            return None
        self._ensure_p2p()
        wdt = min(4_294_967_295, max(1, math.ceil(timeout * 1000)))
        if self._wdt_ms != wdt:
            self._set_wdt(wdt)
        try:
            data = self._transact(P.radio_rx(0), final_timeout=timeout + 1.5)
        except RadioOperationFailed:
            self._stats.rx_timeouts += 1
            self._restore_wdt()
            return None
        except ModuleReset:
            self._ensure_configured()
            return None
        received = time.time()
        self._restore_wdt()
        return RxFrame(data=data, phy=phy, rssi_dbm=self._last_rssi(), snr_db=self._last_snr(),
                       crc_ok=True, time=received)

    def _restore_wdt(self) -> None:
        """After a short receive window, the default watchdog again: now, rather than in
        front of the next frame (send())."""
        if self._wdt_ms != 0 and self._wdt_ms < DEFAULT_WDT_MS:
            self._set_wdt(DEFAULT_WDT_MS)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._proto.abandon()
            self._transport.close()

    # ------------------------------------------------------------------------------- LoRaWAN
    def lorawan_setup(
        self,
        band: int,
        frequency_hz: int,
        dr: int,
        pwridx: int,
        devaddr: int | str,
        nwkskey: bytes | str,
        appskey: bytes | str,
        dcycle: int,
        upctr: int | None = None,
        *,
        rxdelay1_ms: int | None = None,
        rx2: tuple[int, int] | None = None,
        retx: int | None = None,
        adr: bool | None = None,
        sync: int | None = None,
        save: bool = True,
    ) -> None:
        """ABP set-up for a single-channel gateway, as the thesis end node did: ``mac reset``,
        the channel plan, dr, pwridx, keys, (upctr), ``mac save``, ``mac join abp``.

        ``dcycle`` is the ``mac set ch dcycle`` value X: duty cycle = 100/(X+1) % (2.4.8.19.2;
        the thesis uses 9, i.e. 10 %). ``upctr`` restores a persisted uplink frame counter
        (``mac set upctr``); without it the counter is read back from the module.
        """
        cfg = LoRaWANConfig(
            band=band, frequency_hz=frequency_hz, dr=dr, pwridx=pwridx,
            devaddr=parse_dev_addr(devaddr) if isinstance(devaddr, str) else devaddr,
            nwkskey=parse_key(nwkskey, "NwkSKey") if isinstance(nwkskey, str) else bytes(nwkskey),
            appskey=parse_key(appskey, "AppSKey") if isinstance(appskey, str) else bytes(appskey),
            dcycle=dcycle, rxdelay1_ms=rxdelay1_ms, rx2=rx2, retx=retx, adr=adr, sync=sync,
        )
        if len(cfg.nwkskey) != 16 or len(cfg.appskey) != 16:
            raise ConfigError("NwkSKey and AppSKey must be 16 bytes")
        if upctr is not None:
            P.validate_mac_set("upctr", upctr)
        cmds = cfg.commands(upctr=upctr, save=save)

        def apply() -> None:
            if self._mode == "p2p":
                self._transact(P.mac_resume())
            for cmd in cmds:
                self._transact_resuming(cmd)

        self._run_sequence(apply)
        self._lorawan, self._mode, self._phy = cfg, "lorawan", None
        self._upctr = upctr if upctr is not None else self.mac_get_upctr()

    def mac_tx(self, port: int, payload: bytes, confirmed: bool = False,
               timeout: float | None = None) -> MacTxResult:
        """``mac tx uncnf|cnf <port> <hex>`` and its second answer (2.4.2).

        Raises the specific :class:`RN2483Error` for every documented refusal (NotJoined,
        NoFreeChannel, Silent, MacBusy, MacPaused, InvalidDataLength, FrameCounterRolledOver,
        MacTxFailed for ``mac_err``), ModuleReset if the module rebooted during the uplink.
        """
        cfg = self._lorawan
        if cfg is None:
            raise RadioError(f"{self.name}: call lorawan_setup() before mac_tx()")
        payload = bytes(payload)
        cmd = P.mac_tx(confirmed, port, payload)
        self._ensure_configured()
        if self._mode != "lorawan":
            self._transact(P.mac_resume())
            self._mode = "lorawan"
        airtime = cfg.uplink_phy().time_on_air(len(payload) + _LORAWAN_OVERHEAD)
        final = timeout if timeout is not None else cfg.mac_tx_timeout(airtime, confirmed)
        used: list[int | None] = []
        started = [time.time()]

        def accepted(_: Accepted) -> None:
            # "ok": the frame went to the transceiver with the current counter (2.4.2).
            used.append(self._upctr)
            started[0] = time.time()
            if self._upctr is not None:
                self._upctr += 1

        try:
            outcome = self._transact(cmd, final_timeout=final, on_accepted=accepted)
        except MacPaused:  # paused behind our back: a first-stage refusal, nothing was sent
            self._transact(P.mac_resume())
            outcome = self._transact(cmd, final_timeout=final, on_accepted=accepted)
        return MacTxResult(airtime_s=airtime, started=started[0], finished=time.time(),
                           fcnt=used[0] if used else None, port=port, confirmed=confirmed,
                           downlink=outcome.downlink)

    def mac_get_upctr(self) -> int:
        return int(self._execute(P.mac_get("upctr")))

    def mac_set_upctr(self, value: int) -> None:
        """Restore the uplink frame counter (2.4.8.17); the driver tracks it from here on."""
        self._execute(P.mac_set("upctr", value))
        self._upctr = value

    def pop_downlinks(self) -> list[Downlink]:
        """Downlinks that arrived outside a ``mac_tx`` (automatic-reply sequences)."""
        items = list(self._downlinks)
        self._downlinks.clear()
        return items

    # ------------------------------------------------------------------------------ system
    def sys_get_ver(self) -> Version:
        version = self._execute(P.sys_get_ver())
        self._set_version(version)
        return version

    def sys_get_hweui(self) -> str:
        return str(self._execute(P.sys_get_hweui()))

    def mac_get(self, param: str) -> Any:
        """``mac get <param>`` (2.4.9), parsed: int, bool (on/off), hex text or a pair."""
        band = self._lorawan.band if self._lorawan is not None else None
        return self._execute(P.mac_get(param, band))

    def radio_get(self, param: str) -> Any:
        """``radio get <param>`` (2.5.5), parsed."""
        return self._execute(P.radio_get(param))

    def radio_get_snr(self) -> int:
        """SNR of the last received packet in dB, signed (2.5.5.16)."""
        return int(self._execute(P.radio_get("snr")))

    def radio_get_rssi(self) -> int | None:
        """RSSI of the last packet (firmware 1.0.5+); None where the firmware lacks it."""
        if self._rssi_supported is False:
            return None
        try:
            value = int(self._execute(P.radio_get("rssi")))
        except InvalidParam:
            self._rssi_supported = False
            return None
        self._rssi_supported = True
        return value

    def reset(self) -> Version:
        """``sys reset``: reboot the module; the configuration is re-applied before the next
        command (the module itself only restores what ``mac save`` stored)."""
        version = self._transact(P.sys_reset(), timeout=max(self.command_timeout, 3.0))
        self._set_version(version)
        self._after_reboot()
        return version

    def raw(self, text: str, timeout: float | None = None,
            final_timeout: float = 10.0) -> Any:
        """Send one command typed as text; return its final answer (tools and tests)."""
        cmd = P.command_from_text(text)
        return self._execute(cmd, timeout=timeout, final_timeout=final_timeout)

    def info(self) -> dict[str, Any]:
        version = self.sys_get_ver()
        result: dict[str, Any] = {
            "type": "rn2483",
            "port": self.port,
            "model": version.model,
            "firmware": version.firmware_text,
            "banner": version.text,
            "hweui": self.sys_get_hweui(),
            "vdd_mv": int(self._execute(P.sys_get_vdd())),
            "mode": self._mode or "unconfigured",
        }
        if self._lorawan is not None:
            result.update(band=self._lorawan.band, frequency_hz=self._lorawan.frequency_hz,
                          dr=self._lorawan.dr, devaddr=format_dev_addr(self._lorawan.devaddr),
                          upctr=self._upctr)
        if self._phy is not None:
            result["phy"] = str(self._phy)
        result.update({f"stats_{k}": v for k, v in self.stats().items()})
        return result

    def stats(self) -> dict[str, int]:
        """Counters of everything odd the link saw (garbage, time-outs, reboots, ...)."""
        self._stats.garbage_lines = self._proto.garbage_lines
        self._stats.garbage_bytes = self._proto.framer.garbage_bytes
        self._stats.overlong_lines = self._proto.framer.overlong_lines
        self._stats.timeouts = self._proto.timeouts
        self._stats.resets_detected = self._proto.resets_detected
        return dataclasses.asdict(self._stats)

    # ------------------------------------------------------------------ ModuleLoRaWAN interface
    def join_abp(self, session: AbpSession) -> None:
        """`lorawan_setup` for a session: the band from its region (``mac reset 433|868``),
        ``mac set ch dcycle`` X from its duty cycle (100/(X+1) %, 2.4.8.19.2), not saved."""
        band = next((b for b, region in BAND_REGIONS.items() if region is session.region), None)
        if band is None:
            raise ConfigError(f"the RN2483 has no LoRaWAN band for {session.region.name}; "
                              f"it knows {', '.join(r.name for r in BAND_REGIONS.values())}")
        if not 0 < session.duty_cycle <= 1:
            raise ConfigError(f"duty cycle {session.duty_cycle!r} must be a fraction in (0, 1]")
        self.lorawan_setup(band, session.frequency_hz, session.data_rate, session.tx_power_index,
                           session.devaddr, session.nwkskey, session.appskey,
                           dcycle=max(0, round(1 / session.duty_cycle) - 1),
                           upctr=session.uplink_counter, save=False)

    @property
    def uplink_counter(self) -> int | None:
        return self._upctr

    def set_uplink_counter(self, value: int) -> None:
        self.mac_set_upctr(value)

    def send_uplink(self, fport: int, payload: bytes, *, confirmed: bool = False) -> MacTxResult:
        return self.mac_tx(fport, payload, confirmed)

    def reconnect(self, timeout: float = 10.0) -> None:
        """Reopen the port after :class:`RadioDisconnected` (waiting up to ``timeout`` for it to
        come back), check that an RN2483 answers and re-apply the last configuration."""
        self._transport.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._transport.open()
                break
            except RadioDisconnected:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
        self._closed = False
        self._proto.reset()
        self._resync = True
        self._probe()
        self._stats.reconnects += 1
        # A module unplugged with its USB adapter lost power: treat it as rebooted.
        self._after_reboot()
        self._ensure_configured()

    # ---------------------------------------------------------------------------- internals
    def _require_phy(self) -> PhySettings:
        if self._phy is None:
            raise RadioError(f"{self.name}: call configure(phy) before raw-radio operations")
        return self._phy

    def _set_version(self, version: Version) -> None:
        self.version = version
        self.name = f"{version.model} {version.firmware_text} on {self.port}"
        if version.firmware < (1, 0, 5):
            self._rssi_supported = False

    def _probe(self) -> None:
        try:
            version = self._transact(P.sys_get_ver(), timeout=max(self.command_timeout, 1.0))
        except RadioTimeout:
            raise NoSuchDevice(
                f"nothing answered 'sys get ver' on {self.port}: no RN2483 there, or it is not "
                f"at {self._transport.baudrate} baud"
            ) from None
        if version.model != "RN2483":
            raise NoSuchDevice(f"{self.port}: found {version.text!r}, expected an RN2483")
        self._set_version(version)

    def _after_reboot(self) -> None:
        self._paused_until = 0.0
        self._wdt_ms = DEFAULT_WDT_MS
        if self._lorawan is not None or self._mode is not None:
            self._needs_reapply = True

    def _timeout_for(self, cmd: Command) -> float:
        # EEPROM writes are slow; the thesis program waits 2 s after `mac save` (~8975).
        if cmd.text in ("mac save", "mac reset 868", "mac reset 433"):
            return max(self.command_timeout, 3.0)
        return self.command_timeout

    def _transact_resuming(self, cmd: Command) -> Any:
        """A set-up command; if the MAC turns out paused (someone used raw-radio mode before
        this driver opened the port), ``mac resume`` and repeat it once."""
        try:
            return self._transact(cmd, timeout=self._timeout_for(cmd), final_timeout=3.0)
        except MacPaused:
            self._transact(P.mac_resume())
            return self._transact(cmd, timeout=self._timeout_for(cmd), final_timeout=3.0)

    def _set_wdt(self, ms: int) -> None:
        self._execute(P.radio_set("wdt", ms))
        self._wdt_ms = ms

    def _pause(self) -> None:
        ms = int(self._transact(P.mac_pause()))
        if ms == 0:
            raise RadioBusy(f"{self.name}: 'mac pause' answered 0: the LoRaWAN stack is busy")
        # Re-pause a little before the module resumes by itself (2.4.6).
        self._paused_until = time.monotonic() + ms / 1000.0 - 1.0

    def _apply_p2p(self, cmds: list[Command]) -> None:
        self._pause()
        for cmd in cmds:
            self._transact(cmd)
        self._transact(P.radio_set("wdt", self._wdt_ms))

    def _ensure_p2p(self) -> None:
        self._ensure_configured()
        if self._mode != "p2p":
            self._run_sequence(lambda: self._apply_p2p(self._p2p_cmds))
            self._mode = "p2p"
        elif time.monotonic() >= self._paused_until:
            self._pause()

    def _ensure_configured(self) -> None:
        if self._needs_reapply and not self._reapplying:
            self._reapply()

    def _reapply(self) -> None:
        """Re-apply the last configuration after the module rebooted (bounded attempts)."""
        self._reapplying = True
        try:
            for _ in range(3):
                self._needs_reapply = False
                resets = self._proto.resets_detected
                try:
                    self._drain(0.1)  # late answers to whatever the reboot interrupted
                    if self._lorawan is not None:
                        for cmd in self._lorawan.commands(upctr=self._upctr, save=False):
                            self._transact_resuming(cmd)
                    if self._mode == "p2p":
                        self._apply_p2p(self._p2p_cmds)
                except ModuleReset:
                    self._needs_reapply = True
                    continue
                if self._proto.resets_detected == resets and not self._needs_reapply:
                    self._stats.reconfigurations += 1
                    log.info("%s: configuration re-applied after a module reset", self.name)
                    return
            self._needs_reapply = True
            raise ModuleReset(f"{self.name}: the module keeps rebooting while being configured")
        finally:
            self._reapplying = False

    def _run_sequence(self, apply: Callable[[], None]) -> None:
        """Run an idempotent command sequence; start it over if the module rebooted meanwhile."""
        for attempt in range(3):
            self._ensure_configured()
            resets = self._proto.resets_detected
            try:
                apply()
            except ModuleReset:
                if attempt == 2:
                    raise
                continue
            if self._proto.resets_detected == resets:
                return
        raise ModuleReset(f"{self.name}: the module keeps rebooting")

    def _execute(self, cmd: Command, *, timeout: float | None = None,
                 final_timeout: float = 0.0) -> Any:
        """An idempotent command: re-apply the configuration and repeat it after a reboot."""
        for attempt in range(2):
            self._ensure_configured()
            try:
                return self._transact(cmd, timeout=timeout, final_timeout=final_timeout)
            except ModuleReset:
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def _note(self, event: P.Event) -> None:
        """Account for an event that answers nothing the caller waits for."""
        if isinstance(event, Garbage):
            log.debug("%s: ignored line %r", self.name, event.text)
        elif isinstance(event, ResetDetected):
            log.warning("%s: module rebooted (%s); configuration will be re-applied",
                        self.name, event.version.text)
            self._after_reboot()
        elif isinstance(event, UnsolicitedDownlink):
            self._stats.unsolicited_downlinks += 1
            self._downlinks.append(event.downlink)

    def _drain(self, quiet: float) -> None:
        """Consume what arrived while nothing was pending (waiting ``quiet`` s for more)."""
        for _ in range(1000):  # bounded even on a port that never stops babbling
            data = self._transport.read(quiet)
            if not data:
                return
            for event in self._proto.receive_data(data, time.monotonic()):
                self._note(event)

    def _transact(self, cmd: Command, *, timeout: float | None = None,
                  final_timeout: float = 0.0,
                  on_accepted: Callable[[Accepted], None] | None = None) -> Any:
        """Send one command and wait (bounded) for its final answer."""
        if self._closed:
            raise RadioDisconnected(f"{self.name} is closed")
        if not self._transport.is_open:
            raise RadioDisconnected(f"{self.port} is not open: call reconnect()")
        try:
            self._drain(0.05 if self._resync else 0.0)
            self._resync = False
            if self._needs_reapply and not self._reapplying:
                self._reapply()
            data = self._proto.send(cmd, time.monotonic(),
                                    timeout if timeout is not None else self.command_timeout,
                                    final_timeout)
            self._stats.commands += 1
            self._transport.write(data)
            if cmd.expect is P.Expect.NOTHING:
                return None
            outcome: P.Event | None = None
            while outcome is None:
                remaining = self._proto.deadline - time.monotonic()
                chunk = self._transport.read(max(0.0, min(remaining, 0.25)))
                now = time.monotonic()
                events = self._proto.receive_data(chunk, now) if chunk else []
                events += self._proto.check_timeout(now)
                for event in events:
                    if outcome is None and isinstance(event, Accepted) and event.command is cmd:
                        if on_accepted is not None:
                            on_accepted(event)
                    elif outcome is None and isinstance(event, (Completed, Failed, TimedOut)):
                        outcome = event
                    elif outcome is None and isinstance(event, ResetDetected) and (
                        event.during is cmd
                    ):
                        self._after_reboot()
                        outcome = event
                    else:
                        self._note(event)
        except RadioDisconnected:
            self._proto.reset()
            self._stats.disconnects += 1
            raise
        if isinstance(outcome, Completed):
            return outcome.value
        if isinstance(outcome, Failed):
            raise outcome.error
        if isinstance(outcome, ResetDetected):
            raise ModuleReset(
                f"{self.name}: the module rebooted during {cmd.secret_free_text!r} "
                f"(banner {outcome.version.text!r}); its configuration will be re-applied"
            )
        assert isinstance(outcome, TimedOut)
        self._resync = True
        stage = "answer" if outcome.stage == 1 else "second answer"
        extra = f"; last unexpected line {outcome.last_garbage!r}" if outcome.last_garbage else ""
        raise RadioTimeout(f"{self.name}: no {stage} to {cmd.secret_free_text!r} in time{extra}")

    def _last_snr(self) -> float | None:
        try:
            return float(self.radio_get_snr())
        except (RadioTimeout, InvalidParam):
            return None

    def _last_rssi(self) -> float | None:
        try:
            value = self.radio_get_rssi()
        except RadioTimeout:
            return None
        return None if value is None else float(value)
