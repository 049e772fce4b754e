"""Radio protocols: RN2483 answers, EByte frames, SX1276 register values and arguments.

* rn2483: byte 0 picks the pending command (:data:`RN2483_COMMANDS`); the rest is what the
  module "answers", fed to :class:`RN2483Protocol` in two chunks, then a timeout check.
  Nothing may raise; the line buffer stays bounded.
* ebyte: byte 0 picks who sent the stream; the rest goes to :class:`FrameParser` (must never
  raise, buffer bounded by one frame) and to ``decode_frame`` (EByteProtocolError only). Every
  decoded message re-encodes and decodes to itself (names: unless the visible ``\\xNN`` text
  that non-ASCII bytes decode to makes them longer than a payload).
* sx1276: byte 0 picks registers or arguments. Registers: byte pairs (address, value) over the
  reset values, read back into a PHY, whose register plan must read back to the same PHY.
  Arguments: float64/int values (NaN, inf, huge) for the helpers that turn frequencies, powers,
  RSSI and SNR into register values: ConfigError or a value in the register's range.
"""

from __future__ import annotations

import struct

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.radios.ebyte import protocol as eb
from lora_telemetry.radios.rn2483 import protocol as rn
from lora_telemetry.radios.sx1276 import registers as regs

from bench.fuzz.base import Target, check

RN2483_COMMANDS = (
    rn.sys_get_ver(), rn.sys_reset(), rn.sys_get_hweui(), rn.sys_get_vdd(), rn.mac_pause(),
    rn.mac_tx(False, 1, b"\x01\x02"), rn.mac_join("abp"), rn.radio_tx(b"\x40\x01"),
    rn.radio_rx(0), rn.radio_get("snr"), rn.radio_get("rssi"), rn.radio_get("sync"),
    rn.mac_get("devaddr"), rn.mac_get("rx2", 868), rn.mac_get_ch("drrange", 1),
    rn.mac_set("dr", 5), rn.command_from_text("sys get nvm 300"), rn.command_from_text("foo"),
    rn.radio_cw(False), rn.radio_set("pwr", 14),
)
RN2483_ANSWERS = (
    b"ok\r\n", b"invalid_param\r\n", b"RN2483 1.0.5 Oct 31 2018 15:06:52\r\n", b"mac_tx_ok\r\n",
    b"mac_rx 1 0A0B\r\n", b"mac_err\r\n", b"accepted\r\n", b"denied\r\n", b"radio_tx_ok\r\n",
    b"radio_rx  40A21C012600010001\r\n", b"radio_err\r\n", b"busy\r\n", b"no_free_ch\r\n",
    b"-7\r\n", b"3300\r\n", b"0004A30B001A2B3C\r\n", b"26011CA2\r\n", b"4294967295\r\n",
    b"3 868100000\r\n", b"0 5\r\n", b"invalid_data_len\r\n", b"not_joined\r\n", b"FF\r\n",
)


class RN2483Target(Target):
    name = "rn2483"
    max_len = 1400
    tokens = RN2483_ANSWERS + (b"\r\n", b"\n", b"\r", b" ", b"mac_rx ", b"radio_rx ")

    def seeds(self) -> list[bytes]:
        out = []
        for i in range(len(RN2483_COMMANDS)):
            for answer in RN2483_ANSWERS:
                out.append(bytes((i,)) + answer + (b"mac_tx_ok\r\n" if i == 5 else b""))
        return out

    def run(self, data: bytes) -> str:
        proto = rn.RN2483Protocol()
        command = RN2483_COMMANDS[(data[0] if data else 0) % len(RN2483_COMMANDS)]
        proto.send(command, now=0.0, timeout=1.0, final_timeout=5.0)
        body = data[1:]
        cut = len(body) // 2
        events = proto.receive_data(body[:cut], 0.1) + proto.receive_data(body[cut:], 0.2)
        events += proto.check_timeout(10.0)
        check(len(proto.framer._buf) <= rn.MAX_LINE, "line buffer grew past MAX_LINE")
        check(proto.pending is None, "a command is still pending after its deadline")
        for line in proto.framer.feed(body):  # the same lines, classified on their own
            rn.classify_line(line)
        # The link must be usable again: a new command can be sent.
        proto.send(rn.sys_get_ver(), now=11.0, timeout=1.0)
        return ",".join(sorted({type(e).__name__ for e in events})) or "none"


EBYTE_SEEDS = (
    "40530A08000130010100080055", "4053020000", "40530107008050DE19070904", "4053030000",
    "40530B0000", "4053070700" + b"E32-433".hex(), "405309060053583132373800",
    "40530502009CFF", "4053800700" + "48656C6C6FB0FFF8", "40538004000100000000",
    "40530600004053080000", "4053040000",
)


def _round_trips(msg: eb.Message, sender: eb.Sender) -> None:
    if isinstance(msg, (eb.ModuleName, eb.LoraCoreName)) and len(msg.name) > eb.MAX_PAYLOAD_LEN:
        return  # non-ASCII bytes shown as \xNN text made the name too long to send
    again = eb.decode_frame(msg.encode(), sender)
    check(again == msg, f"{msg!r} re-encodes as {again!r}")


class EByteTarget(Target):
    name = "ebyte"
    max_len = 600
    tokens = (b"\x40\x53", b"\x40", b"\x53", b"\x80", b"\x0a", b"\x00\x01", b"\x02\x01")

    def seeds(self) -> list[bytes]:
        return [bytes((who,)) + bytes.fromhex(h) for who in (0, 1) for h in EBYTE_SEEDS]

    def run(self, data: bytes) -> str:
        sender = eb.Sender.MODULE if (data[:1] or b"\0")[0] & 1 else eb.Sender.HOST
        body = data[1:]
        parser = eb.FrameParser(sender)
        messages = parser.feed(body[: len(body) // 2]) + parser.feed(body[len(body) // 2:])
        check(parser.buffered <= eb.HEADER_LEN + eb.MAX_PAYLOAD_LEN, "parser buffer unbounded")
        messages += parser.resync()
        for msg in messages:
            _round_trips(msg, sender)
        try:
            single = eb.decode_frame(body, sender)
        except eb.EByteProtocolError as exc:
            outcome = type(exc).__name__
        else:
            _round_trips(single, sender)
            outcome = type(single).__name__
        modes = [m for m in messages if isinstance(m, eb.SetLoraModes)]
        params = [m for m in messages if isinstance(m, eb.SetLoraParams)]
        if modes and params:
            try:
                eb.phy_from_messages(modes[0], params[0])
            except ConfigError:
                pass
        return f"{outcome}:{len(messages)}"


#: Arguments where register helpers went wrong before: non-finite, huge, band edges.
ARGUMENTS = (float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 10**30, -(10**30), 2**64,
             0, -1, 0.5, 433_175_000, 433_175_000.7, 525_000_000, 525_000_001, 137e6, 1.02e9,
             14.0, 20.4, -4.6, 17.5, 2, -30.0, 31.75, 32.0, -164.0, -200.0, 0x123456, 2**24)


def _argument(data: bytes, i: int) -> float | int:
    chunk = data[1 + 9 * i: 10 + 9 * i].ljust(9, b"\0")
    if chunk[0] < len(ARGUMENTS):
        return ARGUMENTS[chunk[0]]
    if chunk[0] & 1:
        return int.from_bytes(chunk[1:], "little", signed=True) << (chunk[0] >> 3)
    return struct.unpack("<d", chunk[1:])[0]


def _byte(value: int, what: str) -> None:
    check(isinstance(value, int) and 0 <= value <= 0xFF, f"{what} = {value!r} is not a byte")


class SX1276Target(Target):
    name = "sx1276"
    max_len = 300

    def seeds(self) -> list[bytes]:
        from lora_telemetry.core.phy import PhySettings

        plan = regs.config_registers(PhySettings(frequency_hz=433_175_000, sf=7,
                                                 bandwidth_hz=125_000, coding_rate=5))
        reg_seed = b"\0" + b"".join(bytes(p) for p in plan)
        args = [bytes((1,)) + b"".join(bytes((k,)) + bytes(8) for k in (i, i + 1, i + 2))
                for i in range(len(ARGUMENTS))]
        return [reg_seed, reg_seed[:20], b"\x02" + bytes(range(64))] + args

    def run(self, data: bytes) -> str:
        if not data or data[0] % 2 == 0:
            return self._registers(data[1:])
        return self._arguments(data)

    def _registers(self, body: bytes) -> str:
        values = dict(regs.RESET_VALUES)
        for i in range(0, len(body) - 1, 2):
            values[body[i] & regs.SPI_ADDRESS_MASK] = body[i + 1]
        table = {a: values.get(a, 0) for a in range(0x80)}
        for reg in (regs.REG_PKT_SNR_VALUE, regs.REG_PKT_RSSI_VALUE, regs.REG_RSSI_VALUE):
            snr = regs.decode_snr(table[regs.REG_PKT_SNR_VALUE])
            regs.decode_packet_rssi(table[reg], snr, lf_port=bool(reg & 1))
            regs.decode_rssi(table[reg], lf_port=bool(reg & 1))
        regs.rx_coding_rate(table[regs.REG_MODEM_STAT])
        regs.dio0_source(table[regs.REG_DIO_MAPPING1])
        outcome = []
        for for_tx in (True, False):
            try:
                phy = regs.phy_from_registers(table, for_tx=for_tx)
            except regs.UnsupportedPhy:
                outcome.append("UnsupportedPhy")
                continue
            try:
                plan = regs.config_registers(phy, pa_boost=bool(table[regs.REG_PA_CONFIG] & 0x80))
            except ConfigError:
                outcome.append("plan:ConfigError")
                continue
            for addr, value in plan:
                _byte(value, f"register 0x{addr:02X}")
            back = regs.phy_from_registers({**table, **dict(plan)}, for_tx=for_tx)
            same = ("frequency_hz", "sf", "bandwidth_hz", "coding_rate", "preamble_symbols",
                    "crc_on", "sync_word", "iq_inverted")
            check(all(getattr(back, f) == getattr(phy, f) for f in same),
                  f"register plan of {phy} reads back as {back}")
            outcome.append("phy")
        return "regs:" + "/".join(outcome)

    def _arguments(self, data: bytes) -> str:
        a, b, c = (_argument(data, i) for i in range(3))
        ok = 0
        calls = (
            ("check_frequency", lambda: regs.check_frequency(a)),
            ("frf_from_frequency", lambda: regs.frf_from_frequency(a)),
            ("lna_value", lambda: regs.lna_value(a)),
            ("op_mode", lambda: regs.op_mode(regs.MODE_RX_CONTINUOUS, a)),
            ("encode_snr", lambda: regs.encode_snr(b)),
            ("encode_packet_rssi", lambda: regs.encode_packet_rssi(b, int(c) & 0xFF
                                                                   if isinstance(c, int) else 0,
                                                                   lf_port=True)),
            ("encode_rssi", lambda: regs.encode_rssi(b, lf_port=False)),
            ("pa_registers", lambda: regs.pa_registers(c, pa_boost=bool(data[0] & 2))),
            ("bandwidth_code", lambda: regs.bandwidth_code(a)),
            ("coding_rate_code", lambda: regs.coding_rate_code(c)),
            ("nominal_frequency_from_frf", lambda: regs.nominal_frequency_from_frf(a)),
            ("frequency_from_frf", lambda: regs.frequency_from_frf(a)),
        )
        for name, call in calls:
            try:
                result = call()
            except ConfigError:
                continue
            ok += 1
            if name in ("encode_snr", "encode_packet_rssi", "encode_rssi", "lna_value", "op_mode"):
                _byte(result, name)
            elif name == "frf_from_frequency":
                check(0 <= result < 1 << 24, f"Frf {result} does not fit 24 bits")
            elif name == "pa_registers":
                for value in result:
                    _byte(value, name)
        return f"args:{ok}"
