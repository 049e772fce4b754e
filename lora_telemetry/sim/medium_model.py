"""The simulated radio medium as a pure model: who hears which LoRa frame, when, and how well.

No sockets and no clock: every method takes ``now`` (seconds) from its caller, and every random
decision comes from one ``random.Random(seed)`` drawn in the order of events, so a run is
reproducible from its seed and its event sequence. The UDP hub in :mod:`lora_telemetry.sim.medium`
feeds it ``time.time()``; the unit tests feed it a simulated clock.

The physics, and where each default comes from (thesis file, /work/shared/seeds):

* **Timing.** A frame occupies the air from ``t_start`` for exactly
  ``PhySettings.time_on_air(len(data))`` (core airtime, SX1276 datasheet 4.1.1.7) and is
  delivered at its end.
* **Matching.** A receiver hears a frame only if it listened, with matching settings, for the
  whole frame: same spreading factor, bandwidth, sync word and IQ polarity, and a carrier within
  +/-25 % of the bandwidth ("Maximum tolerated frequency offset ... All BW, +/-25% of BW",
  SX1276 FERR_L, line ~13928; "intolerant of frequency offsets in the region of +/- 25%",
  line ~14546). The tolerance matters: an SX1276 programmed through its 61 Hz Frf steps is never
  exactly on an RN2483's 868100000 Hz.
* **Path loss.** Log-distance: ``PL(d) = PL(1 m) + 10 n log10(d / 1 m)``;
  ``RSSI = P_tx + G_tx + G_rx - PL(d)`` plus optional log-normal shadowing (seeded). Defaults
  ``n = 2`` (the free-space exponent of thesis eq. 3.6.2, line ~779) and ``PL(1 m) = 68 dB``,
  fitted by least squares to the thesis range tests (Tables 4.5.8/4.5.9, lines ~2843-2868: DR5 =
  SF7/125 kHz, 252-1040 m, ground level, 433.175 MHz at 10 dBm and 869.525 MHz at 14 dBm); the
  fit reproduces the eight packet-RSSI figures with 2.7 dB rms error. The 37 dB above free space
  at 1 m stand for antennas near the ground, so gains default to 0 dBi.
* **Noise and threshold.** ``noise = -174 dBm/Hz + 10 log10(BW) + NF``, ``SNR = RSSI - noise``.
  A frame is lost below the SF's demodulator SNR limit (SX1276 Table 14, lines ~14186-14203:
  -5 dB at SF6, -7.5 dB at SF7 ... -20 dB at SF12). NF defaults to 7 dB, which reproduces the
  datasheet's 125 kHz sensitivities (RFS_L125_HF, line ~13482: -123 dBm at SF7 ... -136 dBm at
  SF12) within 1 dB for SF7-SF12.
* **Collisions.** Frames overlapping in time on the same channel (as above), SF and bandwidth
  interfere whatever their sync word or IQ; a frame survives only if it is at least the capture
  margin (default 6 dB: co-channel rejection CCR_LL "-6 dB", line ~13893) above the summed
  power of its interferers at that receiver. Different SFs or bandwidths are treated as
  orthogonal (the "quasi-orthogonal" SFs of LoRa: no interference at all in this model).
* **Half duplex.** A transmitting node hears nothing; transmitting ends its RX (it is in standby
  afterwards); a ``listen`` given while it transmits takes effect when the transmission ends.
* **Optional impairments.** ``random_loss`` drops a delivered frame with that probability;
  ``crc_error_rate`` corrupts 1-3 bytes and reports ``crc_ok=False`` (with ``crc_on=False`` the
  receiver cannot tell: the corrupted bytes arrive with ``crc_ok=True``, as on the real chip).
* **Per-node link impairment.** ``node_loss`` maps a receiving node to an extra loss
  probability (e.g. one UAV with a shadowed antenna that misses the ground's TDMA beacons),
  drawn after ``random_loss`` for every frame that would otherwise reach that node and counted
  as ``link_loss``, in total and per node (``nodes[id]["link_loss"]``). It is set in the
  configuration and at run time (:meth:`MediumModel.set_node_loss`, the hub's ``loss`` request,
  ``MediumControl.set_loss``); a node without an entry draws nothing, so a seeded run without
  it is unchanged.

Not modelled: preamble-lock timing (a later, stronger frame captures as readily as an earlier
one), inter-SF leakage, implicit-header/LDRO/coding-rate mismatches between the two ends.

Every (frame, other registered node) pair ends in exactly one outcome, counted in
:meth:`MediumModel.stats`: ``delivered``, ``crc_error`` (delivered corrupted) or one of the
:data:`DROP_REASONS`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from lora_telemetry.core.emulation import MediumEvent, RxEvent, TxDoneEvent
from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.core.numbers import finite_float
from lora_telemetry.core.phy import (
    DEFAULT_NOISE_FIGURE_DB,
    THERMAL_NOISE_DBM_PER_HZ,
    PhySettings,
    noise_floor_dbm,
    parse_spreading_factor,
)

__all__ = [
    "DROP_REASONS",
    "MISMATCH_FIELDS",
    "DEFAULT_SNR_THRESHOLD_DB",
    "MediumError",
    "MediumParams",
    "RxEvent",
    "TxDoneEvent",
    "MediumEvent",
    "MediumModel",
    "distance_m",
]

#: Why a frame did not reach a node, in the order they are checked.
DROP_REASONS: tuple[str, ...] = (
    "not_listening",  # in standby (or not yet listening) when the frame started
    "half_duplex",  # transmitting when the frame started, or started transmitting during it
    "phy_mismatch",  # listening, but with settings that cannot demodulate this frame
    "rx_interrupted",  # left RX or changed settings before the frame ended
    "node_left",  # the node unregistered before the frame ended
    "below_sensitivity",  # SNR under the SF's demodulator limit
    "collision",  # overlapped on its channel by interferers less than the capture margin weaker
    "random_loss",  # the configured random loss probability struck
    "link_loss",  # the receiving node's own extra loss probability (node_loss) struck
)
#: Which setting differed, for ``phy_mismatch`` (the first one found, in this order).
MISMATCH_FIELDS: tuple[str, ...] = ("frequency", "bandwidth", "sf", "sync_word", "iq")

#: LoRa demodulator SNR limit per spreading factor (SX1276 datasheet Table 14, thesis file
#: lines ~14186-14203).
DEFAULT_SNR_THRESHOLD_DB: dict[int, float] = {
    6: -5.0, 7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0,
}

Position = tuple[float, float, float]


class MediumError(LoraTelemetryError):
    """A request the medium cannot carry out (a busy transmitter, bad data, unknown node)."""




def _finite(name: str, value: Any, lo: float = -math.inf, hi: float = math.inf) -> float:
    number = finite_float(value)
    if number is None:
        raise ConfigError(f"medium parameter {name} must be a finite number, got {value!r}")
    if not lo <= number <= hi:
        raise ConfigError(f"medium parameter {name}={value!r} is outside [{lo:g}, {hi:g}]")
    return number


@dataclass(frozen=True)
class MediumParams:
    """Tunables of the medium; defaults and their sources are in the module docstring."""

    reference_loss_db: float = 68.0
    path_loss_exponent: float = 2.0
    min_distance_m: float = 1.0
    shadowing_sigma_db: float = 0.0
    tx_antenna_gain_dbi: float = 0.0
    rx_antenna_gain_dbi: float = 0.0
    default_tx_power_dbm: float = 14.0
    thermal_noise_dbm_per_hz: float = THERMAL_NOISE_DBM_PER_HZ
    noise_figure_db: float = DEFAULT_NOISE_FIGURE_DB
    snr_threshold_db: Mapping[int, float] = field(
        default_factory=lambda: dict(DEFAULT_SNR_THRESHOLD_DB)
    )
    frequency_tolerance_bw: float = 0.25
    capture_margin_db: float = 6.0
    random_loss: float = 0.0
    crc_error_rate: float = 0.0
    origin_lat_deg: float | None = None
    origin_lon_deg: float | None = None
    node_loss: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = {
            "reference_loss_db": (-50.0, 200.0),
            "path_loss_exponent": (0.5, 8.0),
            "min_distance_m": (1e-3, 1e6),
            "shadowing_sigma_db": (0.0, 30.0),
            "tx_antenna_gain_dbi": (-30.0, 40.0),
            "rx_antenna_gain_dbi": (-30.0, 40.0),
            "default_tx_power_dbm": (-40.0, 40.0),
            "thermal_noise_dbm_per_hz": (-200.0, -100.0),
            "noise_figure_db": (0.0, 30.0),
            "frequency_tolerance_bw": (0.0, 1.0),
            "capture_margin_db": (0.0, 60.0),
            "random_loss": (0.0, 1.0),
            "crc_error_rate": (0.0, 1.0),
        }
        for name, (lo, hi) in checks.items():
            object.__setattr__(self, name, _finite(name, getattr(self, name), lo, hi))
        if not isinstance(self.snr_threshold_db, Mapping):
            raise ConfigError("medium parameter snr_threshold_db must map SF -> dB")
        table = dict(DEFAULT_SNR_THRESHOLD_DB)
        for key, value in self.snr_threshold_db.items():
            sf = parse_spreading_factor(key)
            table[sf] = _finite(f"snr_threshold_db[SF{sf}]", value, -60.0, 30.0)
        object.__setattr__(self, "snr_threshold_db", table)
        if not isinstance(self.node_loss, Mapping):
            raise ConfigError("medium parameter node_loss must map node id -> probability")
        object.__setattr__(self, "node_loss", {
            _check_node_id_config(node): _finite(f"node_loss[{node}]", value, 0.0, 1.0)
            for node, value in self.node_loss.items()})
        if (self.origin_lat_deg is None) != (self.origin_lon_deg is None):
            raise ConfigError("medium parameters origin_lat_deg and origin_lon_deg go together")
        if self.origin_lat_deg is not None:
            object.__setattr__(
                self, "origin_lat_deg", _finite("origin_lat_deg", self.origin_lat_deg, -90, 90)
            )
            object.__setattr__(
                self, "origin_lon_deg", _finite("origin_lon_deg", self.origin_lon_deg, -180, 180)
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> MediumParams:
        """Build from a parsed YAML mapping; unknown keys are an error (typos must not pass)."""
        if values is None:
            return cls()
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"medium configuration must be a mapping, got {type(values).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in values if k not in known)
        if unknown:
            raise ConfigError(
                f"unknown medium parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["snr_threshold_db"] = {str(k): v for k, v in sorted(self.snr_threshold_db.items())}
        out["node_loss"] = dict(sorted(self.node_loss.items()))
        return out

    # The formulas, public so tests and tools (range planning) use the same ones.
    def path_loss_db(self, distance: float) -> float:
        """Log-distance path loss in dB at ``distance`` metres (clamped to ``min_distance_m``)."""
        d = max(distance, self.min_distance_m)
        return self.reference_loss_db + 10.0 * self.path_loss_exponent * math.log10(d)

    def mean_rssi_dbm(self, power_dbm: float, distance: float) -> float:
        """Received power without shadowing."""
        return power_dbm + self.tx_antenna_gain_dbi + self.rx_antenna_gain_dbi - self.path_loss_db(
            distance
        )

    def noise_floor_dbm(self, bandwidth_hz: int) -> float:
        """Thermal noise in the channel plus the receiver noise figure."""
        return noise_floor_dbm(bandwidth_hz, self.noise_figure_db, self.thermal_noise_dbm_per_hz)

    def sensitivity_dbm(self, phy: PhySettings) -> float:
        """Weakest RSSI still demodulated: noise floor plus the SF's SNR limit."""
        return self.noise_floor_dbm(phy.bandwidth_hz) + self.snr_threshold_db[phy.sf]


def distance_m(a: Position, b: Position) -> float:
    """Straight-line distance between two east/north/up points."""
    return math.dist(a, b)


def _check_position(position: Any) -> Position:
    try:
        x, y, z = position
    except (TypeError, ValueError):
        raise MediumError(
            f"a position is three numbers (east, north, up metres), got {position!r}"
        ) from None
    out = []
    for v in (x, y, z):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise MediumError(f"position coordinates must be finite numbers, got {position!r}")
        out.append(float(v))
    return (out[0], out[1], out[2])


def _check_node_id_config(node_id: Any) -> str:
    try:
        return _check_node_id(node_id)
    except MediumError as exc:
        raise ConfigError(f"medium parameter node_loss: {exc}") from None


def _check_node_id(node_id: Any) -> str:
    if not isinstance(node_id, str) or not 1 <= len(node_id) <= 64 or not node_id.isprintable():
        raise MediumError(f"node id must be a printable string of 1-64 characters, got {node_id!r}")
    return node_id


@dataclass
class _Node:
    node_id: str
    position: Position
    listening: PhySettings | None = None
    listen_from: float = 0.0  # a listen() during TX starts when the TX ends
    tx_until: float = -math.inf
    tx_count: int = 0
    rx_count: int = 0
    link_lost: int = 0


@dataclass
class _Transmission:
    seq: int
    tx_node: str
    virtual: bool
    data: bytes
    phy: PhySettings
    power_dbm: float
    position: Position
    t_start: float
    airtime: float
    t_end: float
    rssi_at: dict[str, float] = field(default_factory=dict)
    # receiver -> failure reason decided before the end (None: still a candidate)
    outcome: dict[str, str | None] = field(default_factory=dict)


class MediumModel:
    """The radio medium's state machine; see the module docstring for the rules."""

    def __init__(self, params: MediumParams | None = None, seed: int | None = None) -> None:
        self.params = params if params is not None else MediumParams()
        self.seed = seed
        self._rng = random.Random(seed)
        self._nodes: dict[str, _Node] = {}
        self._active: list[_Transmission] = []  # not yet finished
        self._recent: list[_Transmission] = []  # finished, may still overlap an active one
        self._seq = 0
        self._now = -math.inf
        self._counts: dict[str, int] = {
            "transmissions": 0, "injected": 0, "tx_rejected_busy": 0,
            "delivered": 0, "crc_error": 0,
        }
        self._dropped = {reason: 0 for reason in DROP_REASONS}
        self._mismatch = {name: 0 for name in MISMATCH_FIELDS}
        self._node_loss: dict[str, float] = dict(self.params.node_loss)

    # -- time -----------------------------------------------------------------------------
    def _clock(self, now: float) -> float:
        """Monotonic view of the caller's clock (a wall clock may step back)."""
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
            raise MediumError(f"time must be a finite number of seconds, got {now!r}")
        self._now = max(self._now, float(now))
        return self._now

    def next_due(self) -> float | None:
        """End time of the earliest frame still on the air (when to call :meth:`finish_due`)."""
        return min((tx.t_end for tx in self._active), default=None)

    # -- nodes ----------------------------------------------------------------------------
    def _node(self, node_id: str) -> _Node:
        node_id = _check_node_id(node_id)
        node = self._nodes.get(node_id)
        if node is None:
            node = self._nodes[node_id] = _Node(node_id, (0.0, 0.0, 0.0))
        return node

    def add_node(self, node_id: str, position: Position | None = None) -> None:
        """Register a node (idempotent); ``position`` None keeps the current one (origin if new)."""
        node = self._node(node_id)
        if position is not None:
            node.position = _check_position(position)

    def set_node_loss(self, node_id: str, probability: float) -> None:
        """The extra probability that a frame reaching ``node_id`` is lost (0 removes it)."""
        node_id = _check_node_id(node_id)
        if isinstance(probability, bool):
            raise MediumError(f"a loss probability is a number 0..1, got {probability!r}")
        value = finite_float(probability)
        if value is None or not 0.0 <= value <= 1.0:
            raise MediumError(f"a loss probability is a number 0..1, got {probability!r}")
        if value == 0.0:
            self._node_loss.pop(node_id, None)
        else:
            self._node_loss[node_id] = value

    def node_loss(self) -> dict[str, float]:
        """The per-node extra loss probabilities in force."""
        return dict(sorted(self._node_loss.items()))

    def has_node(self, node_id: str) -> bool:
        return node_id in self._nodes

    def node_ids(self) -> list[str]:
        return sorted(self._nodes)

    def position(self, node_id: str) -> Position:
        if node_id not in self._nodes:
            raise MediumError(f"unknown node {node_id!r}")
        return self._nodes[node_id].position

    def set_position(self, node_id: str, position: Position, now: float) -> None:
        """Move a node (registering it if new). Frames already on the air keep their RSSI."""
        self._clock(now)
        self._node(node_id).position = _check_position(position)

    def remove_node(self, node_id: str, now: float) -> None:
        """Forget a node; frames it was receiving end as ``node_left``."""
        self._clock(now)
        if self._nodes.pop(node_id, None) is None:
            return
        for tx in self._active:
            if node_id in tx.outcome and tx.outcome[node_id] is None:
                tx.outcome[node_id] = "node_left"

    def set_listening(self, node_id: str, phy: PhySettings | None, now: float) -> None:
        """Enter RX with ``phy`` (None: standby). Re-listening with the same settings is a no-op."""
        now = self._clock(now)
        if phy is not None and not isinstance(phy, PhySettings):
            raise MediumError(f"listen needs PhySettings or None, got {type(phy).__name__}")
        node = self._node(node_id)
        start = max(now, node.tx_until)
        if phy is not None and node.listening == phy and node.listen_from <= start:
            return  # already listening (or queued to) with these settings: nothing changes
        node.listening = phy
        node.listen_from = start
        self._interrupt(node_id, now, "rx_interrupted")

    def _interrupt(self, node_id: str, now: float, reason: str) -> None:
        """End every reception in progress at ``node_id`` (frames still on the air at ``now``)."""
        for tx in self._active:
            if tx.t_end > now and tx.outcome.get(node_id, "x") is None:
                tx.outcome[node_id] = reason

    # -- transmissions --------------------------------------------------------------------
    def _power(self, power_dbm: float | None, phy: PhySettings) -> float:
        if power_dbm is None:
            power_dbm = phy.tx_power_dbm if phy.tx_power_dbm is not None else (
                self.params.default_tx_power_dbm
            )
        return _finite("tx power (dBm)", power_dbm, -40.0, 40.0)

    def _airtime(self, data: Any, phy: Any) -> float:
        if not isinstance(phy, PhySettings):
            raise MediumError(f"transmit needs PhySettings, got {type(phy).__name__}")
        if not isinstance(data, (bytes, bytearray)):
            raise MediumError(f"frame data must be bytes, got {type(data).__name__}")
        return phy.time_on_air(len(data))  # ConfigError for 0 or > 255 bytes

    def start_tx(
        self, node_id: str, data: bytes, phy: PhySettings, power_dbm: float | None, now: float
    ) -> float:
        """Put a node's frame on the air at ``now``; returns its airtime in seconds.

        Raises :class:`MediumError` if the node is still transmitting (a real radio is busy).
        """
        now = self._clock(now)
        airtime = self._airtime(data, phy)
        power = self._power(power_dbm, phy)
        node = self._node(node_id)
        if node.tx_until > now:
            self._counts["tx_rejected_busy"] += 1
            raise MediumError(
                f"node {node_id!r} is still transmitting until t={node.tx_until:.6f}; "
                "wait for its TX done"
            )
        # Half duplex: transmitting ends RX, and the node is in standby afterwards.
        self._interrupt(node_id, now, "half_duplex")
        node.listening = None
        node.tx_until = now + airtime
        node.tx_count += 1
        self._launch(node_id, bytes(data), phy, power, node.position, now, airtime, virtual=False)
        return airtime

    def inject(
        self,
        tx_node: str,
        data: bytes,
        phy: PhySettings,
        power_dbm: float | None,
        position: Position,
        now: float,
    ) -> float:
        """Transmit from a virtual transmitter (not a node: it hears nothing, gets no TX done).

        ``tx_node`` is only a label and may name a real node (a forged or replayed frame); the
        real node's state is untouched. Returns the airtime.
        """
        now = self._clock(now)
        airtime = self._airtime(data, phy)
        power = self._power(power_dbm, phy)
        tx_node = _check_node_id(tx_node)
        pos = _check_position(position)
        self._counts["injected"] += 1
        self._launch(tx_node, bytes(data), phy, power, pos, now, airtime, virtual=True)
        return airtime

    def _launch(
        self,
        tx_node: str,
        data: bytes,
        phy: PhySettings,
        power: float,
        position: Position,
        now: float,
        airtime: float,
        *,
        virtual: bool,
    ) -> None:
        self._seq += 1
        self._counts["transmissions"] += 1
        tx = _Transmission(
            self._seq, tx_node, virtual, data, phy, power, position, now, airtime, now + airtime
        )
        for rid in sorted(self._nodes):  # sorted: the RNG is drawn in a reproducible order
            if rid == tx_node and not virtual:
                continue
            rx = self._nodes[rid]
            tx.rssi_at[rid] = self._rssi(power, position, rx.position, draw=True)
            if rx.tx_until > now:
                tx.outcome[rid] = "half_duplex"
            elif rx.listening is None or rx.listen_from > now:
                tx.outcome[rid] = "not_listening"
            else:
                mismatch = self._mismatch_field(rx.listening, phy)
                if mismatch is not None:
                    self._mismatch[mismatch] += 1
                tx.outcome[rid] = "phy_mismatch" if mismatch else None
        self._active.append(tx)

    def _rssi(self, power: float, a: Position, b: Position, *, draw: bool) -> float:
        rssi = self.params.mean_rssi_dbm(power, distance_m(a, b))
        if draw and self.params.shadowing_sigma_db > 0.0:
            rssi += self._rng.gauss(0.0, self.params.shadowing_sigma_db)
        return rssi

    def _same_channel(self, a: PhySettings, b: PhySettings) -> bool:
        return abs(a.frequency_hz - b.frequency_hz) <= self.params.frequency_tolerance_bw * max(
            a.bandwidth_hz, b.bandwidth_hz
        )

    def _mismatch_field(self, rx: PhySettings, tx: PhySettings) -> str | None:
        tolerance_hz = self.params.frequency_tolerance_bw * rx.bandwidth_hz
        if abs(rx.frequency_hz - tx.frequency_hz) > tolerance_hz:
            return "frequency"
        if rx.bandwidth_hz != tx.bandwidth_hz:
            return "bandwidth"
        if rx.sf != tx.sf:
            return "sf"
        if rx.sync_word != tx.sync_word:
            return "sync_word"
        if rx.iq_inverted != tx.iq_inverted:
            return "iq"
        return None

    # -- ends of frames ---------------------------------------------------------------------
    def finish_due(self, now: float) -> list[tuple[str, MediumEvent]]:
        """Frames whose airtime has ended by ``now``: ``(node_id, event)`` pairs to deliver.

        Frames are settled in order of their end; within a frame the sender's
        :class:`TxDoneEvent` comes first, then the receivers in node-id order.
        """
        now = self._clock(now)
        due = sorted((tx for tx in self._active if tx.t_end <= now), key=lambda t: (t.t_end, t.seq))
        if not due:
            return []
        events: list[tuple[str, MediumEvent]] = []
        for tx in due:
            if not tx.virtual:
                events.append((tx.tx_node, TxDoneEvent(tx.airtime, tx.t_start, tx.t_end)))
            for rid in sorted(tx.outcome):
                event = self._settle(tx, rid)
                if event is not None:
                    events.append((rid, event))
        done = {id(tx) for tx in due}
        self._active = [tx for tx in self._active if id(tx) not in done]
        self._recent.extend(due)
        # A finished frame matters while an unfinished one overlaps it.
        earliest = min((tx.t_start for tx in self._active), default=math.inf)
        self._recent = [tx for tx in self._recent if tx.t_end > earliest]
        return events

    def _settle(self, tx: _Transmission, rid: str) -> RxEvent | None:
        reason = tx.outcome[rid]
        rssi = tx.rssi_at[rid]
        snr = rssi - self.params.noise_floor_dbm(tx.phy.bandwidth_hz)
        if reason is None and snr < self.params.snr_threshold_db[tx.phy.sf]:
            reason = "below_sensitivity"
        if reason is None:
            interference_mw = sum(
                10.0 ** (self._rssi_of(other, rid) / 10.0) for other in self._interferers(tx)
            )
            if interference_mw > 0.0:
                # (1e-9: an interferer exactly at the margin must not fail on float rounding)
                margin = rssi - 10.0 * math.log10(interference_mw)
                if margin < self.params.capture_margin_db - 1e-9:
                    reason = "collision"
        if reason is None and self.params.random_loss > 0.0:
            if self._rng.random() < self.params.random_loss:
                reason = "random_loss"
        link_loss = self._node_loss.get(rid, 0.0)
        if reason is None and link_loss > 0.0 and self._rng.random() < link_loss:
            reason = "link_loss"
            node = self._nodes.get(rid)
            if node is not None:
                node.link_lost += 1
        if reason is not None:
            self._dropped[reason] += 1
            return None
        data, crc_ok = tx.data, True
        if self.params.crc_error_rate > 0.0 and self._rng.random() < self.params.crc_error_rate:
            data = self._corrupt(data)
            crc_ok = not tx.phy.crc_on  # without a CRC the receiver cannot notice
            self._counts["crc_error"] += 1
        else:
            self._counts["delivered"] += 1
        node = self._nodes.get(rid)
        if node is not None:
            node.rx_count += 1
        return RxEvent(data, tx.phy, rssi, snr, crc_ok, tx.tx_node, tx.t_start, tx.t_end)

    def _interferers(self, tx: _Transmission) -> list[_Transmission]:
        return [
            other
            for other in (*self._recent, *self._active)
            if other is not tx
            and other.t_start < tx.t_end
            and other.t_end > tx.t_start
            and other.phy.sf == tx.phy.sf
            and other.phy.bandwidth_hz == tx.phy.bandwidth_hz
            and self._same_channel(other.phy, tx.phy)
        ]

    def _rssi_of(self, tx: _Transmission, rid: str) -> float:
        if rid not in tx.rssi_at:  # the node registered after that frame started
            node = self._nodes.get(rid)
            pos = node.position if node is not None else tx.position
            tx.rssi_at[rid] = self._rssi(tx.power_dbm, tx.position, pos, draw=False)
        return tx.rssi_at[rid]

    def _corrupt(self, data: bytes) -> bytes:
        out = bytearray(data)
        for index in self._rng.sample(range(len(out)), min(len(out), self._rng.randint(1, 3))):
            out[index] ^= self._rng.randint(1, 255)
        return bytes(out)

    # -- statistics -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters as plain JSON-able data (a fresh copy)."""
        return {
            "seed": self.seed,
            **self._counts,
            "dropped": dict(self._dropped),
            "dropped_total": sum(self._dropped.values()),
            "phy_mismatch": dict(self._mismatch),
            "on_air": len(self._active),
            "node_loss": self.node_loss(),
            "nodes": {
                nid: {
                    "position_m": list(n.position),
                    "listening": n.listening is not None,
                    "tx": n.tx_count,
                    "rx": n.rx_count,
                    "link_loss": n.link_lost,
                }
                for nid, n in sorted(self._nodes.items())
            },
        }
