"""LoRaWAN 1.0.x MAC layer: frame parsing and building, payload crypto, MIC, frame counters.

Sans-I/O: bytes and numbers in, bytes and numbers out. Section numbers refer to the LoRaWAN
Specification 1.0 reproduced in the thesis file (``uav-swarm-lora-thesis-with-datasheets.txt``,
lines ~3660-7450).

On the wire every multi-octet field is little-endian; DevAddr, EUIs, NetID and nonces are
handled here as integers and printed big-endian ("26011CA2"), the way keys and addresses are
written in device configuration (``mac set devaddr 26011CA2``).

Receive path for a data uplink::

    frame = parse_data_frame(phy)
    cand = tracker.check(frame.fcnt)                      # 16 -> 32-bit counter, no state change
    res = decode_data_frame(frame, nwkskey, appskey, fcnt32=cand.fcnt32)
    if res.mic_valid and tracker.accept(cand):            # counter advances only after the MIC
        deliver(res.payload)
"""

from __future__ import annotations

import hmac
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, Union

from Crypto.Cipher import AES
from Crypto.Hash import CMAC

from lora_telemetry.core.errors import ConfigError, CryptoError, MalformedFrameError

__all__ = [
    "MAX_FCNT_GAP", "MAX_PHY_PAYLOAD", "MType", "MTYPE_NAMES", "MTYPE_TITLES",
    "LoRaWANFrameError", "FrameLengthError", "UnsupportedMajorError", "FOptsError",
    "UnexpectedFrameTypeError", "KeyFormatError", "IdentifierFormatError", "LoRaWANArgumentError",
    "FrameCounterStateError",
    "MHDR", "FCtrl", "FHDR", "DataFrame", "JoinRequest", "EncryptedJoinAccept", "JoinAccept",
    "ProprietaryFrame", "RFUFrame", "Frame", "DecodedDataFrame", "SessionKeys",
    "parse_key", "parse_dev_addr", "parse_eui", "format_dev_addr", "format_eui", "phy_from_hex",
    "parse_phy_payload", "parse_data_frame", "crypt_frm_payload", "compute_data_mic",
    "decrypt_frame_payload", "verify_mic", "decode_data_frame", "build_data_frame",
    "compute_join_request_mic", "build_join_request", "encrypt_join_accept",
    "decrypt_join_accept", "derive_session_keys",
    "FCntStatus", "FCntCandidate", "classify_fcnt", "reconstruct_fcnt32", "FrameCounterTracker",
]

# §7.1.8 (thesis ~line 5421; the same figure for every region in §7): receivers accept a frame
# counter that advanced by less than this.
MAX_FCNT_GAP = 16384
# A LoRa packet carries at most 255 payload octets (SX1276 RegMaxPayloadLength = 0xFF, thesis
# gateway program ~line 8642); B0's len(msg) octet can therefore never overflow.
MAX_PHY_PAYLOAD = 255

_MIC_LEN = 4
_FHDR_MIN = 7  # DevAddr(4) FCtrl(1) FCnt(2), §4.3.1
_DATA_MIN = 1 + _FHDR_MIN + _MIC_LEN
_JOIN_REQUEST_LEN = 1 + 8 + 8 + 2 + _MIC_LEN  # §6.2.4
_JOIN_ACCEPT_LENS = (1 + 16, 1 + 32)  # §6.2.5: 12 octets + MIC, optionally + 16-octet CFList
_U32 = 0xFFFFFFFF


class MType(IntEnum):
    """MHDR message types (§4.2.1, Table 1)."""

    JOIN_REQUEST = 0
    JOIN_ACCEPT = 1
    UNCONFIRMED_DATA_UP = 2
    UNCONFIRMED_DATA_DOWN = 3
    CONFIRMED_DATA_UP = 4
    CONFIRMED_DATA_DOWN = 5
    RFU = 6
    PROPRIETARY = 7


#: Machine names for CLIs, logs and ROS messages.
MTYPE_NAMES: dict[MType, str] = {m: m.name.lower() for m in MType}
#: The spec's own wording (Table 1), which is also what common decoders print.
MTYPE_TITLES: dict[MType, str] = {
    MType.JOIN_REQUEST: "Join Request",
    MType.JOIN_ACCEPT: "Join Accept",
    MType.UNCONFIRMED_DATA_UP: "Unconfirmed Data Up",
    MType.UNCONFIRMED_DATA_DOWN: "Unconfirmed Data Down",
    MType.CONFIRMED_DATA_UP: "Confirmed Data Up",
    MType.CONFIRMED_DATA_DOWN: "Confirmed Data Down",
    MType.RFU: "RFU",
    MType.PROPRIETARY: "Proprietary",
}

_DATA_MTYPES = frozenset(
    {MType.UNCONFIRMED_DATA_UP, MType.UNCONFIRMED_DATA_DOWN,
     MType.CONFIRMED_DATA_UP, MType.CONFIRMED_DATA_DOWN}
)
_UPLINK_MTYPES = frozenset({MType.UNCONFIRMED_DATA_UP, MType.CONFIRMED_DATA_UP})


# --------------------------------------------------------------------------------------- errors


class LoRaWANFrameError(MalformedFrameError):
    """Bytes that are not a well-formed LoRaWAN 1.0 PHYPayload."""


class FrameLengthError(LoRaWANFrameError):
    """Too short, too long, or the wrong length for its message type."""


class UnsupportedMajorError(LoRaWANFrameError):
    """MHDR Major is not 0 (LoRaWAN R1), the only format this layer understands."""


class FOptsError(LoRaWANFrameError):
    """FOptsLen runs past the frame, or FOpts appear together with FPort 0."""


class UnexpectedFrameTypeError(LoRaWANFrameError):
    """A well-formed frame of another message type than the operation needs."""


class KeyFormatError(CryptoError, ConfigError):
    """An AES-128 key that is not 16 bytes / 32 hex digits (a crypto and a config problem)."""


class IdentifierFormatError(ConfigError):
    """A DevAddr or EUI string of the wrong length or with non-hex characters."""


class LoRaWANArgumentError(ConfigError):
    """A field value that cannot be encoded (FPort out of range, FOpts too long, ...)."""


class FrameCounterStateError(ConfigError):
    """A persisted frame-counter tracker dict that cannot be loaded."""


# -------------------------------------------------------------------------- keys and identifiers

KeyLike = Union[bytes, bytearray, str]
_HEX = frozenset(string.hexdigits)


def _parse_hex(text: str, digits: int, what: str, exc: type[Exception]) -> bytes:
    if not isinstance(text, str):
        raise exc(f"{what} must be a hex string, got {type(text).__name__}")
    s = text.strip()
    if s[:2] in ("0x", "0X"):
        s = s[2:]
    bad = next((c for c in s if c not in _HEX), None)
    if bad is not None:
        raise exc(f"{what} contains non-hex character {bad!r}: expected {digits} hex digits")
    if len(s) != digits:
        raise exc(f"{what} must be {digits} hex digits ({digits // 2} bytes), got {len(s)}")
    return bytes.fromhex(s)


def parse_key(text: str, name: str = "key") -> bytes:
    """Parse a 32-hex-digit AES-128 key (``mac set appskey`` format) into 16 bytes."""
    return _parse_hex(text, 32, name, KeyFormatError)


def parse_dev_addr(text: str) -> int:
    """Parse an 8-hex-digit DevAddr as printed (big-endian, "26011CA2") into an int."""
    return int.from_bytes(_parse_hex(text, 8, "DevAddr", IdentifierFormatError), "big")


def parse_eui(text: str, name: str = "EUI") -> int:
    """Parse a 16-hex-digit EUI-64 (DevEUI/AppEUI) as printed (big-endian) into an int."""
    return int.from_bytes(_parse_hex(text, 16, name, IdentifierFormatError), "big")


def format_dev_addr(dev_addr: int) -> str:
    """DevAddr as configured and printed: 8 upper-case hex digits, big-endian."""
    return f"{dev_addr:08X}"


def format_eui(eui: int) -> str:
    """EUI-64 as printed: 16 upper-case hex digits, big-endian."""
    return f"{eui:016X}"


def phy_from_hex(text: str) -> bytes:
    """Hex text of a PHYPayload (spaces allowed) to bytes, with a frame error on bad hex."""
    if not isinstance(text, str):
        raise LoRaWANFrameError(f"PHYPayload hex must be a string, got {type(text).__name__}")
    s = "".join(text.split())
    bad = next((c for c in s if c not in _HEX), None)
    if bad is not None:
        raise LoRaWANFrameError(f"PHYPayload hex contains non-hex character {bad!r}")
    if len(s) % 2:
        raise LoRaWANFrameError(f"PHYPayload hex has an odd number of digits ({len(s)})")
    return bytes.fromhex(s)


def _key(key: KeyLike, name: str) -> bytes:
    if isinstance(key, str):
        return parse_key(key, name)
    if isinstance(key, (bytes, bytearray)):
        if len(key) != 16:
            raise KeyFormatError(f"{name} must be 16 bytes (AES-128), got {len(key)}")
        return bytes(key)
    raise KeyFormatError(f"{name} must be bytes or a hex string, got {type(key).__name__}")


def _uint(value: Any, bits: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LoRaWANArgumentError(f"{name} must be an integer, got {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise LoRaWANArgumentError(f"{name} must fit in {bits} bits, got {value}")
    return value


def _dev_addr(value: int | str) -> int:
    return parse_dev_addr(value) if isinstance(value, str) else _uint(value, 32, "DevAddr")


def _eui(value: int | str, name: str) -> int:
    return parse_eui(value, name) if isinstance(value, str) else _uint(value, 64, name)


def _as_bytes(phy: Any) -> bytes:
    if isinstance(phy, (bytes, bytearray, memoryview)):
        return bytes(phy)
    raise TypeError(f"PHYPayload must be bytes, got {type(phy).__name__}")


# ------------------------------------------------------------------------------ frame structures


@dataclass(frozen=True)
class MHDR:
    """MAC header (§4.2): MType (bits 7..5), RFU (4..2), Major (1..0)."""

    mtype: MType
    major: int = 0
    rfu: int = 0

    @classmethod
    def from_byte(cls, value: int) -> MHDR:
        return cls(MType(value >> 5), value & 0x03, (value >> 2) & 0x07)

    def to_byte(self) -> int:
        return (int(self.mtype) << 5) | ((self.rfu & 0x07) << 2) | (self.major & 0x03)

    @property
    def name(self) -> str:
        return MTYPE_NAMES[self.mtype]


@dataclass(frozen=True)
class FCtrl:
    """Frame control octet (§4.3.1). Bit 4 means FPending on downlinks and ClassB on uplinks
    (RFU for class A, §8 "Class B"); only the meaning of the frame's direction is ever set.
    Bit 6 is ADRACKReq in both directions as the 1.0 tables (thesis ~4071-4076) draw it."""

    adr: bool = False
    adr_ack_req: bool = False
    ack: bool = False
    f_pending: bool = False
    class_b: bool = False
    fopts_len: int = 0

    @classmethod
    def from_byte(cls, value: int, *, uplink: bool) -> FCtrl:
        bit4 = bool(value & 0x10)
        return cls(
            adr=bool(value & 0x80),
            adr_ack_req=bool(value & 0x40),
            ack=bool(value & 0x20),
            f_pending=bit4 and not uplink,
            class_b=bit4 and uplink,
            fopts_len=value & 0x0F,
        )

    def to_byte(self) -> int:
        return (
            (0x80 if self.adr else 0) | (0x40 if self.adr_ack_req else 0)
            | (0x20 if self.ack else 0) | (0x10 if (self.f_pending or self.class_b) else 0)
            | (self.fopts_len & 0x0F)
        )


@dataclass(frozen=True)
class FHDR:
    """Frame header (§4.3.1): DevAddr, FCtrl, the 16 transmitted FCnt bits, FOpts."""

    dev_addr: int
    fctrl: FCtrl
    fcnt: int
    fopts: bytes = b""

    @property
    def dev_addr_hex(self) -> str:
        return format_dev_addr(self.dev_addr)


@dataclass(frozen=True)
class DataFrame:
    """A parsed data message; ``frm_payload`` is as transmitted (still encrypted)."""

    mhdr: MHDR
    fhdr: FHDR
    fport: int | None
    frm_payload: bytes
    mic: bytes
    raw: bytes = field(repr=False)

    @property
    def mtype(self) -> MType:
        return self.mhdr.mtype

    @property
    def uplink(self) -> bool:
        return self.mhdr.mtype in _UPLINK_MTYPES

    @property
    def confirmed(self) -> bool:
        return self.mhdr.mtype in (MType.CONFIRMED_DATA_UP, MType.CONFIRMED_DATA_DOWN)

    @property
    def dev_addr(self) -> int:
        return self.fhdr.dev_addr

    @property
    def dev_addr_hex(self) -> str:
        return self.fhdr.dev_addr_hex

    @property
    def fctrl(self) -> FCtrl:
        return self.fhdr.fctrl

    @property
    def fcnt(self) -> int:
        """The 16 transmitted counter bits; see :func:`reconstruct_fcnt32`."""
        return self.fhdr.fcnt

    @property
    def fopts(self) -> bytes:
        return self.fhdr.fopts

    @property
    def msg(self) -> bytes:
        """MHDR | FHDR | FPort | FRMPayload: what the MIC covers (§4.4)."""
        return self.raw[:-_MIC_LEN]


@dataclass(frozen=True)
class JoinRequest:
    """Join-request (§6.2.4); sent in clear."""

    mhdr: MHDR
    app_eui: int
    dev_eui: int
    dev_nonce: int
    mic: bytes
    raw: bytes = field(repr=False)

    @property
    def app_eui_hex(self) -> str:
        return format_eui(self.app_eui)

    @property
    def dev_eui_hex(self) -> str:
        return format_eui(self.dev_eui)

    @property
    def msg(self) -> bytes:
        return self.raw[:-_MIC_LEN]


@dataclass(frozen=True)
class EncryptedJoinAccept:
    """Join-accept as received: everything after MHDR is encrypted under the AppKey."""

    mhdr: MHDR
    ciphertext: bytes
    raw: bytes = field(repr=False)


@dataclass(frozen=True)
class JoinAccept:
    """Decrypted join-accept (§6.2.5) and its MIC verdict."""

    mhdr: MHDR
    app_nonce: int
    net_id: int
    dev_addr: int
    dl_settings: int
    rx_delay: int
    cf_list: bytes | None
    mic: bytes
    mic_valid: bool
    plaintext: bytes = field(repr=False)  # MHDR | decrypted body | MIC

    @property
    def dev_addr_hex(self) -> str:
        return format_dev_addr(self.dev_addr)

    @property
    def net_id_hex(self) -> str:
        return f"{self.net_id:06X}"

    @property
    def rx1_dr_offset(self) -> int:
        return (self.dl_settings >> 4) & 0x07

    @property
    def rx2_data_rate(self) -> int:
        return self.dl_settings & 0x0F

    @property
    def cf_list_frequencies_hz(self) -> list[int]:
        """EU868/CN779/EU433 CFList (§7.1.4): five 24-bit little-endian frequencies x 100 Hz."""
        if self.cf_list is None:
            return []
        return [int.from_bytes(self.cf_list[i:i + 3], "little") * 100 for i in range(0, 15, 3)]


@dataclass(frozen=True)
class ProprietaryFrame:
    """MType 111: format outside the spec, so the body is kept whole (no MIC assumed)."""

    mhdr: MHDR
    payload: bytes
    raw: bytes = field(repr=False)


@dataclass(frozen=True)
class RFUFrame:
    """MType 110 (reserved): kept whole so a gateway can count and forward it."""

    mhdr: MHDR
    payload: bytes
    raw: bytes = field(repr=False)


Frame = Union[DataFrame, JoinRequest, EncryptedJoinAccept, ProprietaryFrame, RFUFrame]


# ---------------------------------------------------------------------------------------- parse


def parse_phy_payload(phy: bytes) -> Frame:
    """Parse any LoRaWAN 1.0 PHYPayload into its typed frame; raises LoRaWANFrameError."""
    phy = _as_bytes(phy)
    if not phy:
        raise FrameLengthError("empty PHYPayload: no MHDR")
    if len(phy) > MAX_PHY_PAYLOAD:
        raise FrameLengthError(
            f"PHYPayload of {len(phy)} bytes exceeds the LoRa maximum of {MAX_PHY_PAYLOAD}"
        )
    mhdr = MHDR.from_byte(phy[0])
    if mhdr.major != 0:
        raise UnsupportedMajorError(
            f"MHDR 0x{phy[0]:02X} has Major {mhdr.major}; only 0 (LoRaWAN R1) is defined (§4.2.2)"
        )
    mt = mhdr.mtype
    if mt in _DATA_MTYPES:
        return _parse_data(phy, mhdr)
    if mt == MType.JOIN_REQUEST:
        if len(phy) != _JOIN_REQUEST_LEN:
            raise FrameLengthError(
                f"join-request must be {_JOIN_REQUEST_LEN} bytes, got {len(phy)}"
            )
        return JoinRequest(
            mhdr=mhdr,
            app_eui=int.from_bytes(phy[1:9], "little"),
            dev_eui=int.from_bytes(phy[9:17], "little"),
            dev_nonce=int.from_bytes(phy[17:19], "little"),
            mic=phy[19:],
            raw=phy,
        )
    if mt == MType.JOIN_ACCEPT:
        if len(phy) not in _JOIN_ACCEPT_LENS:
            raise FrameLengthError(
                f"join-accept must be 17 bytes (or 33 with a CFList), got {len(phy)}"
            )
        return EncryptedJoinAccept(mhdr=mhdr, ciphertext=phy[1:], raw=phy)
    if mt == MType.PROPRIETARY:
        return ProprietaryFrame(mhdr=mhdr, payload=phy[1:], raw=phy)
    return RFUFrame(mhdr=mhdr, payload=phy[1:], raw=phy)


def _parse_data(phy: bytes, mhdr: MHDR) -> DataFrame:
    if len(phy) < _DATA_MIN:
        raise FrameLengthError(
            f"data frame needs at least {_DATA_MIN} bytes (MHDR, FHDR, MIC), got {len(phy)}"
        )
    uplink = mhdr.mtype in _UPLINK_MTYPES
    fctrl = FCtrl.from_byte(phy[5], uplink=uplink)
    body_end = len(phy) - _MIC_LEN
    fopts_end = 8 + fctrl.fopts_len
    if fopts_end > body_end:
        raise FOptsError(
            f"FOptsLen {fctrl.fopts_len} runs past the frame: only {body_end - 8} "
            "byte(s) between FCnt and MIC"
        )
    fport: int | None = None
    frm = b""
    if fopts_end < body_end:
        fport = phy[fopts_end]
        frm = phy[fopts_end + 1:body_end]
        if fport == 0 and fctrl.fopts_len:
            # §4.3.1.6: with MAC commands in FOpts, port 0 cannot be used.
            raise FOptsError("FOpts present together with FPort 0 (§4.3.1.6 forbids it)")
    fhdr = FHDR(
        dev_addr=int.from_bytes(phy[1:5], "little"),
        fctrl=fctrl,
        fcnt=int.from_bytes(phy[6:8], "little"),
        fopts=phy[8:fopts_end],
    )
    return DataFrame(mhdr=mhdr, fhdr=fhdr, fport=fport, frm_payload=frm,
                     mic=phy[body_end:], raw=phy)


def parse_data_frame(phy: bytes | DataFrame) -> DataFrame:
    """Parse a PHYPayload that must be a data message (any direction, confirmed or not)."""
    if isinstance(phy, DataFrame):
        return phy
    frame = parse_phy_payload(phy)
    if not isinstance(frame, DataFrame):
        raise UnexpectedFrameTypeError(
            f"expected a data frame, got {MTYPE_TITLES[frame.mhdr.mtype]}"
        )
    return frame


# --------------------------------------------------------------------------------------- crypto


def _aes_encrypt(key: bytes, data: bytes) -> bytes:
    return AES.new(key, AES.MODE_ECB).encrypt(data)


def cmac4(key: bytes, data: bytes) -> bytes:
    """The first 4 bytes of AES-CMAC (RFC 4493) of ``data``: LoRaWAN's MIC (section 4.4)."""
    return CMAC.new(key, msg=data, ciphermod=AES).digest()[:_MIC_LEN]



def _dir_block(first: int, dev_addr: int, fcnt32: int, uplink: bool, last: int) -> bytes:
    # A_i and B0 share this layout (§4.3.3.1, §4.4): tag | 4x00 | Dir | DevAddr | FCnt | 00 | x
    return (
        bytes((first, 0, 0, 0, 0, 0 if uplink else 1))
        + dev_addr.to_bytes(4, "little") + fcnt32.to_bytes(4, "little")
        + bytes((0, last))
    )


def crypt_frm_payload(key: KeyLike, dev_addr: int | str, fcnt32: int, uplink: bool,
                      data: bytes) -> bytes:
    """Encrypt or decrypt an FRMPayload (§4.3.3.1): XOR with S = AES(K, A_1) | AES(K, A_2) ...

    The keystream is symmetric, so one function serves both directions of the operation.
    ``fcnt32`` is the full 32-bit counter; only its low 16 bits travel in the frame.
    """
    k = _key(key, "payload key")
    addr = _dev_addr(dev_addr)
    fcnt32 = _uint(fcnt32, 32, "fcnt32")
    data = bytes(data)
    if len(data) > MAX_PHY_PAYLOAD:
        raise LoRaWANArgumentError(f"FRMPayload of {len(data)} bytes cannot fit in a LoRa frame")
    nblocks = -(-len(data) // 16)
    blocks = b"".join(_dir_block(0x01, addr, fcnt32, uplink, i) for i in range(1, nblocks + 1))
    stream = _aes_encrypt(k, blocks)
    return bytes(a ^ b for a, b in zip(data, stream))


def compute_data_mic(nwkskey: KeyLike, msg: bytes, dev_addr: int | str, fcnt32: int,
                     uplink: bool) -> bytes:
    """MIC = AES-CMAC(NwkSKey, B0 | msg)[0..3] (§4.4)."""
    k = _key(nwkskey, "NwkSKey")
    if len(msg) > MAX_PHY_PAYLOAD:
        raise FrameLengthError(f"msg of {len(msg)} bytes does not fit B0's length octet")
    b0 = _dir_block(0x49, _dev_addr(dev_addr), _uint(fcnt32, 32, "fcnt32"), uplink, len(msg))
    return cmac4(k, b0 + bytes(msg))


def _fcnt32_for(frame: DataFrame, fcnt32: int | None) -> int:
    if fcnt32 is None:
        return frame.fcnt
    _uint(fcnt32, 32, "fcnt32")
    if fcnt32 & 0xFFFF != frame.fcnt:
        raise LoRaWANArgumentError(
            f"fcnt32 {fcnt32} (0x{fcnt32:08X}) does not end in the transmitted FCnt "
            f"0x{frame.fcnt:04X}"
        )
    return fcnt32


def decrypt_frame_payload(frame: DataFrame, *, nwkskey: KeyLike | None = None,
                          appskey: KeyLike | None = None,
                          fcnt32: int | None = None) -> bytes | None:
    """Plain FRMPayload, keyed by FPort (§4.3.3.1 Table 3: 0 -> NwkSKey, 1..255 -> AppSKey).

    Returns ``b""`` for a frame without payload and ``None`` when the needed key is missing.
    """
    if not frame.frm_payload:
        return b""
    key = nwkskey if frame.fport == 0 else appskey
    if key is None:
        return None
    name = "NwkSKey" if frame.fport == 0 else "AppSKey"
    return crypt_frm_payload(_key(key, name), frame.dev_addr, _fcnt32_for(frame, fcnt32),
                             frame.uplink, frame.frm_payload)


def verify_mic(frame: bytes | Frame, key: KeyLike, fcnt32: int | None = None) -> bool:
    """Check a frame's MIC: NwkSKey for data frames, AppKey for join-request/accept.

    For data frames pass the reconstructed 32-bit counter (default: the 16 transmitted bits).
    Proprietary and RFU frames have no defined MIC and raise UnexpectedFrameTypeError.
    """
    if not isinstance(frame, (DataFrame, JoinRequest, EncryptedJoinAccept,
                              ProprietaryFrame, RFUFrame)):
        frame = parse_phy_payload(frame)
    if isinstance(frame, DataFrame):
        calc = compute_data_mic(key, frame.msg, frame.dev_addr, _fcnt32_for(frame, fcnt32),
                                frame.uplink)
        return hmac.compare_digest(calc, frame.mic)
    if isinstance(frame, JoinRequest):
        return hmac.compare_digest(compute_join_request_mic(key, frame.msg), frame.mic)
    if isinstance(frame, EncryptedJoinAccept):
        return decrypt_join_accept(frame, key).mic_valid
    raise UnexpectedFrameTypeError(f"{MTYPE_TITLES[frame.mhdr.mtype]} frames carry no standard MIC")


@dataclass(frozen=True)
class DecodedDataFrame:
    """Result of :func:`decode_data_frame`.

    ``payload`` is the plain FRMPayload (``None`` if its key was not given); ``mic_valid`` is
    ``None`` when no NwkSKey was given; ``fcnt32`` is the counter both were computed with.
    """

    frame: DataFrame
    fcnt32: int
    payload: bytes | None
    mic_valid: bool | None


def decode_data_frame(phy: bytes | DataFrame, nwkskey: KeyLike | None = None,
                      appskey: KeyLike | None = None,
                      fcnt32: int | None = None) -> DecodedDataFrame:
    """Parse a data frame, decrypt what the given keys allow and check the MIC if possible."""
    frame = parse_data_frame(phy)
    fc = _fcnt32_for(frame, fcnt32)
    payload = decrypt_frame_payload(frame, nwkskey=nwkskey, appskey=appskey, fcnt32=fc)
    mic_valid = None if nwkskey is None else verify_mic(frame, nwkskey, fc)
    return DecodedDataFrame(frame=frame, fcnt32=fc, payload=payload, mic_valid=mic_valid)


def build_data_frame(
    dev_addr: int | str,
    fcnt32: int,
    payload: bytes = b"",
    *,
    nwkskey: KeyLike,
    appskey: KeyLike | None = None,
    fport: int | None = None,
    uplink: bool = True,
    confirmed: bool = False,
    fopts: bytes = b"",
    adr: bool = False,
    adr_ack_req: bool = False,
    ack: bool = False,
    f_pending: bool = False,
    class_b: bool = False,
) -> bytes:
    """Build a data PHYPayload with an encrypted FRMPayload and its MIC.

    ``payload`` is plain text; it is encrypted with AppSKey (FPort 1..255) or NwkSKey
    (FPort 0). ``fcnt32`` is the full counter used in A_i and B0; its low 16 bits are sent.
    An FPort with an empty payload is allowed (and transmitted), as the spec permits.
    """
    addr = _dev_addr(dev_addr)
    fcnt32 = _uint(fcnt32, 32, "fcnt32")
    payload, fopts = bytes(payload), bytes(fopts)
    if len(fopts) > 15:
        raise LoRaWANArgumentError(f"FOpts hold at most 15 bytes (§4.3.1.6), got {len(fopts)}")
    if fport is None:
        if payload:
            raise LoRaWANArgumentError("a non-empty FRMPayload needs an FPort (§4.3.2)")
    else:
        _uint(fport, 8, "FPort")
        if fport == 0 and fopts:
            raise LoRaWANArgumentError("FPort 0 cannot be used with FOpts (§4.3.1.6)")
    if f_pending and uplink:
        raise LoRaWANArgumentError("FPending is a downlink-only bit (§4.3.1.4)")
    if class_b and not uplink:
        raise LoRaWANArgumentError("the ClassB bit exists only on uplinks")
    nwk = _key(nwkskey, "NwkSKey")
    if payload:
        if fport == 0:
            pkey = nwk
        elif appskey is None:
            raise LoRaWANArgumentError(f"AppSKey is needed to encrypt a payload on FPort {fport}")
        else:
            pkey = _key(appskey, "AppSKey")
        frm = crypt_frm_payload(pkey, addr, fcnt32, uplink, payload)
    else:
        frm = b""
    if uplink:
        mtype = MType.CONFIRMED_DATA_UP if confirmed else MType.UNCONFIRMED_DATA_UP
    else:
        mtype = MType.CONFIRMED_DATA_DOWN if confirmed else MType.UNCONFIRMED_DATA_DOWN
    fctrl = FCtrl(adr=bool(adr), adr_ack_req=bool(adr_ack_req), ack=bool(ack),
                  f_pending=bool(f_pending), class_b=bool(class_b), fopts_len=len(fopts))
    msg = (
        bytes((MHDR(mtype).to_byte(),)) + addr.to_bytes(4, "little") + bytes((fctrl.to_byte(),))
        + (fcnt32 & 0xFFFF).to_bytes(2, "little") + fopts
        + (b"" if fport is None else bytes((fport,))) + frm
    )
    if len(msg) + _MIC_LEN > MAX_PHY_PAYLOAD:
        raise LoRaWANArgumentError(
            f"frame of {len(msg) + _MIC_LEN} bytes exceeds the LoRa maximum of {MAX_PHY_PAYLOAD}"
        )
    return msg + compute_data_mic(nwk, msg, addr, fcnt32, uplink)


# ----------------------------------------------------------------------------------------- join


@dataclass(frozen=True)
class SessionKeys:
    """NwkSKey and AppSKey from a join; kept out of repr so they never reach a log line."""

    nwkskey: bytes = field(repr=False)
    appskey: bytes = field(repr=False)


def compute_join_request_mic(appkey: KeyLike, msg: bytes) -> bytes:
    """AES-CMAC(AppKey, MHDR | AppEUI | DevEUI | DevNonce)[0..3] (§6.2.4)."""
    return cmac4(_key(appkey, "AppKey"), bytes(msg))


def build_join_request(appkey: KeyLike, app_eui: int | str, dev_eui: int | str,
                       dev_nonce: int) -> bytes:
    """Build a join-request PHYPayload (EUIs as printed, big-endian; little-endian on air)."""
    msg = (
        bytes((MHDR(MType.JOIN_REQUEST).to_byte(),))
        + _eui(app_eui, "AppEUI").to_bytes(8, "little")
        + _eui(dev_eui, "DevEUI").to_bytes(8, "little")
        + _uint(dev_nonce, 16, "DevNonce").to_bytes(2, "little")
    )
    return msg + compute_join_request_mic(appkey, msg)


def encrypt_join_accept(appkey: KeyLike, *, app_nonce: int, net_id: int | str,
                        dev_addr: int | str, dl_settings: int = 0, rx_delay: int = 0,
                        cf_list: bytes | None = None) -> bytes:
    """Server side of §6.2.5 (for emulators): MIC, then AES *decrypt* of body|MIC under AppKey,
    so that the end device only needs AES encrypt to read it."""
    k = _key(appkey, "AppKey")
    if isinstance(net_id, str):
        net_id = int.from_bytes(_parse_hex(net_id, 6, "NetID", IdentifierFormatError), "big")
    if cf_list is not None and len(cf_list) != 16:
        raise LoRaWANArgumentError(f"CFList must be 16 bytes, got {len(cf_list)}")
    mhdr = bytes((MHDR(MType.JOIN_ACCEPT).to_byte(),))
    body = (
        _uint(app_nonce, 24, "AppNonce").to_bytes(3, "little")
        + _uint(net_id, 24, "NetID").to_bytes(3, "little")
        + _dev_addr(dev_addr).to_bytes(4, "little")
        + bytes((_uint(dl_settings, 8, "DLSettings"), _uint(rx_delay, 8, "RxDelay")))
        + (bytes(cf_list) if cf_list is not None else b"")
    )
    mic = cmac4(k, mhdr + body)
    return mhdr + AES.new(k, AES.MODE_ECB).decrypt(body + mic)


def decrypt_join_accept(phy: bytes | EncryptedJoinAccept, appkey: KeyLike) -> JoinAccept:
    """Decrypt a join-accept with AES encrypt under AppKey (§6.2.5) and check its MIC."""
    if isinstance(phy, EncryptedJoinAccept):
        frame = phy
    else:
        parsed = parse_phy_payload(phy)
        if not isinstance(parsed, EncryptedJoinAccept):
            raise UnexpectedFrameTypeError(
                f"expected a join-accept, got {MTYPE_TITLES[parsed.mhdr.mtype]}"
            )
        frame = parsed
    k = _key(appkey, "AppKey")
    clear = _aes_encrypt(k, frame.ciphertext)
    body, mic = clear[:-_MIC_LEN], clear[-_MIC_LEN:]
    mhdr_byte = frame.raw[:1]
    return JoinAccept(
        mhdr=frame.mhdr,
        app_nonce=int.from_bytes(body[0:3], "little"),
        net_id=int.from_bytes(body[3:6], "little"),
        dev_addr=int.from_bytes(body[6:10], "little"),
        dl_settings=body[10],
        rx_delay=body[11],
        cf_list=body[12:28] if len(body) > 12 else None,
        mic=mic,
        mic_valid=hmac.compare_digest(cmac4(k, mhdr_byte + body), mic),
        plaintext=mhdr_byte + clear,
    )


def derive_session_keys(appkey: KeyLike, app_nonce: int, net_id: int,
                        dev_nonce: int) -> SessionKeys:
    """NwkSKey/AppSKey = AES(AppKey, 0x01/0x02 | AppNonce | NetID | DevNonce | pad16) (§6.2.5)."""
    k = _key(appkey, "AppKey")
    tail = (
        _uint(app_nonce, 24, "AppNonce").to_bytes(3, "little")
        + _uint(net_id, 24, "NetID").to_bytes(3, "little")
        + _uint(dev_nonce, 16, "DevNonce").to_bytes(2, "little")
        + bytes(7)
    )
    return SessionKeys(nwkskey=_aes_encrypt(k, b"\x01" + tail),
                       appskey=_aes_encrypt(k, b"\x02" + tail))


# --------------------------------------------------------------------------------- frame counter


class FCntStatus(str, Enum):
    """How a received counter relates to the last accepted one."""

    NEW = "new"                      # ahead by less than max_gap: deliver after MIC check
    DUPLICATE = "duplicate"          # same counter: retransmission or double reception
    REPLAY = "replay"                # older than the last accepted counter
    OUT_OF_WINDOW = "out_of_window"  # too far ahead (sync lost) or past 2**32 - 1


@dataclass(frozen=True)
class FCntCandidate:
    """Classification of one received FCnt against ``basis`` (the last accepted counter).

    ``fcnt32`` is the counter to verify the MIC with: the forward reconstruction for NEW and
    OUT_OF_WINDOW, the older counter for REPLAY (so a genuine replay still verifies and can be
    told from a forgery). ``lost`` is how many counters accepting it would skip.
    """

    fcnt16: int
    fcnt32: int
    status: FCntStatus
    lost: int
    basis: int | None


def _check_max_gap(max_gap: int) -> int:
    _uint(max_gap, 32, "max_gap")
    if not 1 <= max_gap <= 0x10000:
        raise LoRaWANArgumentError(f"max_gap must be within 1..65536, got {max_gap}")
    return max_gap


def classify_fcnt(fcnt16: int, last_fcnt32: int | None,
                  max_gap: int = MAX_FCNT_GAP) -> FCntCandidate:
    """Place the 16 transmitted counter bits relative to the last accepted 32-bit counter.

    §4.3.1.5: the receiver follows the counter "provided the value received has incremented
    compared to the current counter value and is less than ... MAX_FCNT_GAP after considering
    counter rollovers"; the upper 16 bits are inferred from the traffic.
    """
    fcnt16 = _uint(fcnt16, 16, "fcnt16")
    _check_max_gap(max_gap)
    if last_fcnt32 is None:  # first frame of a session: upper bits are zero
        return FCntCandidate(fcnt16, fcnt16, FCntStatus.NEW, 0, None)
    last = _uint(last_fcnt32, 32, "last_fcnt32")
    ahead = (fcnt16 - last) & 0xFFFF
    if ahead == 0:
        return FCntCandidate(fcnt16, last, FCntStatus.DUPLICATE, 0, last)
    forward = last + ahead
    if ahead < max_gap:
        if forward <= _U32:
            return FCntCandidate(fcnt16, forward, FCntStatus.NEW, ahead - 1, last)
        # The 32-bit counter is exhausted: the session must end (rejoin / new keys).
        return FCntCandidate(fcnt16, forward & _U32, FCntStatus.OUT_OF_WINDOW, 0, last)
    behind = 0x10000 - ahead
    if last - behind >= 0:
        return FCntCandidate(fcnt16, last - behind, FCntStatus.REPLAY, 0, last)
    return FCntCandidate(fcnt16, forward & _U32, FCntStatus.OUT_OF_WINDOW, 0, last)


def reconstruct_fcnt32(fcnt16: int, last_fcnt32: int | None,
                       max_gap: int = MAX_FCNT_GAP) -> int | None:
    """The 32-bit counter of a frame that is acceptable: the last one again (retransmission)
    or ahead by less than ``max_gap`` across a 16-bit rollover; ``None`` otherwise."""
    cand = classify_fcnt(fcnt16, last_fcnt32, max_gap)
    if cand.status in (FCntStatus.NEW, FCntStatus.DUPLICATE):
        return cand.fcnt32
    return None


_TRACKER_COUNTS = ("accepted", "duplicates", "replays", "out_of_window", "lost")


class FrameCounterTracker:
    """Per-DevAddr, per-direction counter state: replay/duplicate detection and loss counting.

    Pure state: :meth:`check` never changes anything; call :meth:`accept` only once the MIC has
    verified with ``candidate.fcnt32``, so a forged frame can neither advance the counter nor
    inflate the statistics. :meth:`to_dict`/:meth:`from_dict` let the caller persist it.
    """

    def __init__(self, dev_addr: int | str, *, max_gap: int = MAX_FCNT_GAP,
                 last_fcnt32: int | None = None, accepted: int = 0, duplicates: int = 0,
                 replays: int = 0, out_of_window: int = 0, lost: int = 0) -> None:
        self.dev_addr = _dev_addr(dev_addr)
        self.max_gap = _check_max_gap(max_gap)
        self.last_fcnt32 = None if last_fcnt32 is None else _uint(last_fcnt32, 32, "last_fcnt32")
        self.accepted = _uint(accepted, 64, "accepted")
        self.duplicates = _uint(duplicates, 64, "duplicates")
        self.replays = _uint(replays, 64, "replays")
        self.out_of_window = _uint(out_of_window, 64, "out_of_window")
        self.lost = _uint(lost, 64, "lost")

    def __repr__(self) -> str:
        return (f"FrameCounterTracker(dev_addr={format_dev_addr(self.dev_addr)}, "
                f"last_fcnt32={self.last_fcnt32}, accepted={self.accepted}, lost={self.lost}, "
                f"duplicates={self.duplicates}, replays={self.replays}, "
                f"out_of_window={self.out_of_window})")

    def check(self, fcnt16: int) -> FCntCandidate:
        """Classify a received 16-bit FCnt; the result's ``fcnt32`` is what to verify with."""
        return classify_fcnt(fcnt16, self.last_fcnt32, self.max_gap)

    def accept(self, candidate: FCntCandidate) -> bool:
        """Record a MIC-verified frame; True when it is new and should be delivered.

        A candidate computed before another frame was accepted is re-classified first.
        """
        if candidate.basis != self.last_fcnt32:
            candidate = self.check(candidate.fcnt16)
        if candidate.status is FCntStatus.NEW:
            self.last_fcnt32 = candidate.fcnt32
            self.accepted += 1
            self.lost += candidate.lost
            return True
        if candidate.status is FCntStatus.DUPLICATE:
            self.duplicates += 1
        elif candidate.status is FCntStatus.REPLAY:
            self.replays += 1
        else:
            self.out_of_window += 1
        return False

    def reset(self) -> None:
        """Start a new session (after a join, counters restart at 0, §4.3.1.5); keep stats."""
        self.last_fcnt32 = None

    @property
    def loss_ratio(self) -> float:
        """Lost / (accepted + lost), from counter gaps; 0.0 before any frame."""
        total = self.accepted + self.lost
        return self.lost / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-safe state."""
        d: dict[str, Any] = {
            "dev_addr": format_dev_addr(self.dev_addr),
            "max_gap": self.max_gap,
            "last_fcnt32": self.last_fcnt32,
        }
        d.update({k: getattr(self, k) for k in _TRACKER_COUNTS})
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrameCounterTracker:
        """Inverse of :meth:`to_dict`; missing counters default to 0, bad values raise."""
        if not isinstance(data, Mapping):
            raise FrameCounterStateError(
                f"frame-counter state must be a mapping, got {type(data).__name__}"
            )
        unknown = set(data) - {"dev_addr", "max_gap", "last_fcnt32", *_TRACKER_COUNTS}
        if unknown:
            raise FrameCounterStateError(f"unknown frame-counter state keys: {sorted(unknown)}")
        if "dev_addr" not in data:
            raise FrameCounterStateError("frame-counter state lacks 'dev_addr'")
        try:
            return cls(
                data["dev_addr"],
                max_gap=data.get("max_gap", MAX_FCNT_GAP),
                last_fcnt32=data.get("last_fcnt32"),
                **{k: data.get(k, 0) for k in _TRACKER_COUNTS},
            )
        except ConfigError as exc:
            raise FrameCounterStateError(f"bad frame-counter state: {exc}") from exc
