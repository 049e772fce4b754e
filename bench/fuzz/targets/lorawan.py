"""LoRaWAN PHYPayloads (core/lorawan.py) and the ground pipeline (core/gateway.py).

Seeds are authentic frames: the published vectors (lorawan_vectors.json) for the parser, and
telemetry uplinks built with the registry's keys for the gateway. The MIC invariant: bytes that
verify under any key the harness knows must be one of the authentic frames (a mutant passes
only if the mutation left the bytes identical; a random 32-bit MIC match is a 2**-32 event per
input, so a million inputs would see one with probability 2e-4).
"""

from __future__ import annotations

import random

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core import gateway as gw
from lora_telemetry.core import lorawan as lw

from bench.fuzz.base import Target, check, fixture_key, lorawan_vectors

#: MHDR values of every MType, a valid FCtrl with FOptsLen 15, common FPorts.
TOKENS = tuple(bytes((b,)) for b in (0x00, 0x20, 0x40, 0x60, 0x80, 0xA0, 0xC0, 0xE0, 0x41, 0x0F,
                                     0x8F, 0x01, 0xE0, 0xFF)) + (
    bytes.fromhex("a21c0126"), bytes.fromhex("f17dbe49"), b"\x02\x01", b"\xff\xff",
)


def _keys(vector: dict, name: str) -> bytes | None:
    value = vector.get(name)
    return bytes.fromhex(value) if value else None


class LoRaWANTarget(Target):
    """parse_phy_payload, verify_mic, decrypt and decode_data_frame on any bytes."""

    name = "lorawan"
    max_len = 300
    tokens = TOKENS

    def __init__(self) -> None:
        vectors = lorawan_vectors()
        self._seeds = [bytes.fromhex(v["phy_hex"]) for v in vectors]
        #: DevAddr -> the (NwkSKey, AppSKey) pairs of its vectors; other frames are tried with
        #: the first pair (a wrong key must not verify either)
        self.session_keys: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for v in vectors:
            if v.get("nwkskey") and v["expected"].get("devaddr"):
                pairs = self.session_keys.setdefault(int(v["expected"]["devaddr"], 16), [])
                pair = (_keys(v, "nwkskey"), _keys(v, "appskey"))
                if pair not in pairs:
                    pairs.append(pair)
        self.default_keys = next(iter(self.session_keys.values()))[:1]
        self.app_keys = list(dict.fromkeys(_keys(v, "appkey") for v in vectors if v.get("appkey")))
        # Frames whose MIC is not known to be bad (one vector gives no NwkSKey but is genuine).
        self.authentic = {bytes.fromhex(v["phy_hex"]) for v in vectors
                          if v["expected"].get("mic_valid") is not False}

    def seeds(self) -> list[bytes]:
        return list(self._seeds)

    def _verified(self, data: bytes, what: str) -> None:
        check(data in self.authentic, f"{what} verifies on bytes that are not an authentic frame")

    def run(self, data: bytes) -> str:
        try:
            frame = lw.parse_phy_payload(data)
        except lw.LoRaWANFrameError as exc:
            return type(exc).__name__
        kind = type(frame).__name__
        if isinstance(frame, lw.DataFrame):
            for nwk, app in self.session_keys.get(frame.dev_addr, self.default_keys):
                decoded = lw.decode_data_frame(data, nwk, app)
                check(decoded.mic_valid is not None, "MIC verdict missing although NwkSKey given")
                if decoded.payload is not None:
                    check(len(decoded.payload) == len(frame.frm_payload),
                          "decrypted payload length differs from FRMPayload")
                if decoded.mic_valid:
                    self._verified(data, "decode_data_frame MIC")
            return f"{kind}:{'up' if frame.uplink else 'down'}"
        if isinstance(frame, (lw.JoinRequest, lw.EncryptedJoinAccept)):
            for appkey in self.app_keys:
                if lw.verify_mic(frame, appkey):
                    self._verified(data, f"{kind} MIC")
            if isinstance(frame, lw.EncryptedJoinAccept):
                accept = lw.decrypt_join_accept(frame, self.app_keys[0])
                check(len(accept.plaintext) == len(data), "join-accept plaintext length")
            return kind
        try:
            lw.verify_mic(frame, self.default_keys[0][0])
        except lw.UnexpectedFrameTypeError:
            return kind
        raise AssertionError(f"verify_mic accepted a {kind}, which has no MIC")


def _sample(i: int, t: float) -> tcodec.TelemetrySample:
    return tcodec.TelemetrySample(
        time_unix_s=t, lat_deg=40.4 + i * 1e-4, lon_deg=-3.7 - i * 1e-4, alt_amsl_m=650.0 + i,
        alt_rel_m=20.0 + i, heading_deg=10.0 * i, ground_speed_mps=5.0, climb_mps=0.5,
        battery_pct=90.0 - i, voltage_v=15.8, custom_mode=4, armed=True, system_status=4,
        gps_fix_type=3, satellites=12, failure_flags=0,
    )


class GatewayTarget(Target):
    """Gateway.process on any bytes, one gateway for the whole run (its state is fuzzed too)."""

    name = "gateway"
    max_len = 300
    tokens = TOKENS
    stateful = True
    #: receive time of every input: the seeds' sample time plus one second
    RX_TIME = 1_700_000_001.0

    def __init__(self) -> None:
        cfg = tcodec.CodecConfig(40.4, -3.7, 640.0, tcodec.VehicleFamily.ARDUCOPTER)
        task = next(v for v in lorawan_vectors() if v["id"] == "task-brief-lora")
        self.registry = [
            gw.Device("uav1", 0x26011CA2, bytes.fromhex(task["nwkskey"]),
                      bytes.fromhex(task["appskey"]), cfg, system_id=1),
            gw.Device("uav2", 0x26011CA3, fixture_key("uav2 nwkskey"), fixture_key("uav2 appskey"),
                      cfg, system_id=2),
        ]
        self._seeds: list[bytes] = []
        for n, dev in enumerate(self.registry):
            for fcnt in range(1, 9):
                port, payload = tcodec.encode(_sample(fcnt, self.RX_TIME - 1.0), cfg)
                self._seeds.append(lw.build_data_frame(
                    dev.devaddr, fcnt + 0x10000 * n, payload, nwkskey=dev.nwkskey,
                    appskey=dev.appskey, fport=port, confirmed=fcnt % 3 == 0))
            # A frame without FPort and one on FPort 2: authentic but not telemetry.
            self._seeds.append(lw.build_data_frame(dev.devaddr, 20, nwkskey=dev.nwkskey))
            self._seeds.append(lw.build_data_frame(dev.devaddr, 21, b"\x01\x02", fport=2,
                                                   nwkskey=dev.nwkskey, appskey=dev.appskey))
        self.authentic = set(self._seeds)
        self.reset()

    def reset(self) -> None:
        self.gateway = gw.Gateway(self.registry)
        self.processed = 0

    def seeds(self) -> list[bytes]:
        return list(self._seeds)

    def run(self, data: bytes) -> str:
        crc_ok = not (data[:1] == b"\xff" and len(data) == 1)
        verdict = self.gateway.process(data, crc_ok=crc_ok, rx_time=self.RX_TIME,
                                       rssi_dbm=-100.0, snr_db=5.0)
        self.processed += 1
        check(verdict.status in gw.STATUSES, f"unknown verdict {verdict.status!r}")
        if verdict.status in (gw.ACCEPTED, gw.DUPLICATE, gw.REPLAY, gw.OUT_OF_WINDOW,
                              gw.DECODE_ERROR):
            check(data in self.authentic, f"{verdict.status} (MIC verified) on forged bytes")
        if verdict.accepted:
            check(verdict.sample is not None, "accepted frame without a sample")
        return verdict.status

    def check_state(self) -> None:
        g = self.gateway
        check(len(g.unknown_devaddrs) <= gw.MAX_UNKNOWN_DEVADDRS,
              f"unknown_devaddrs holds {len(g.unknown_devaddrs)} > {gw.MAX_UNKNOWN_DEVADDRS}")
        check(sum(g.totals.values()) == self.processed, "a frame got no verdict, or two")
        check(len(g.trackers) == len(self.registry) and len(g.links) == len(self.registry),
              "per-device state for unregistered devices")


def unknown_devaddr_stream(gateway: gw.Gateway, count: int, rng_seed: int = 1) -> None:
    """Frames from ``count`` random unregistered DevAddrs (for the bounded-state test)."""
    rng = random.Random(rng_seed)
    for _ in range(count):
        addr = rng.getrandbits(32)
        phy = lw.build_data_frame(addr, 1, b"x", nwkskey=bytes(16), appskey=bytes(16), fport=1)
        gateway.process(phy, crc_ok=True, rx_time=GatewayTarget.RX_TIME)
