"""Conversions between the core's values and ROS 2 messages (the only place that knows both)."""

from __future__ import annotations

import math
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core import saturation
from lora_telemetry.core.gateway import Device, LinkCounters
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.core.tdma_gateway import SlotTiming
from lora_telemetry.msg import LinkStats, RadioFrame, UavTelemetry

NAN = math.nan


def stamp(t_unix_s: float) -> Time:
    sec = math.floor(t_unix_s)
    return Time(sec=int(sec), nanosec=min(999_999_999, int(round((t_unix_s - sec) * 1e9))))


def stamp_to_float(t: Time) -> float:
    return t.sec + t.nanosec * 1e-9


def _f(value: float | None) -> float:
    return NAN if value is None else float(value)


def uav_telemetry(sample: tcodec.TelemetrySample, device: Device, *, fcnt32: int,
                  phy: PhySettings | None, rssi_dbm: float | None, snr_db: float | None,
                  latency_s: float | None) -> UavTelemetry:
    msg = UavTelemetry()
    msg.header.stamp = stamp(sample.time_unix_s)
    msg.header.frame_id = "map"
    msg.uav_name = device.name
    msg.devaddr = device.devaddr
    msg.system_id = device.system_id
    msg.latitude_deg = _f(sample.lat_deg)
    msg.longitude_deg = _f(sample.lon_deg)
    msg.altitude_amsl_m = _f(sample.alt_amsl_m)
    msg.altitude_relative_m = _f(sample.alt_rel_m)
    if sample.lat_deg is not None and sample.lon_deg is not None:
        east, north = device.codec.projection.to_local(sample.lat_deg, sample.lon_deg)
        msg.position_enu.x, msg.position_enu.y = float(east), float(north)
    else:
        msg.position_enu.x = msg.position_enu.y = NAN
    msg.position_enu.z = (NAN if sample.alt_amsl_m is None
                          else float(sample.alt_amsl_m - device.codec.origin_alt_m))
    msg.heading_deg = _f(sample.heading_deg)
    msg.ground_speed_mps = _f(sample.ground_speed_mps)
    msg.climb_rate_mps = _f(sample.climb_mps)
    msg.armed = bool(sample.armed)
    msg.flight_mode = sample.mode_name or "UNKNOWN"
    msg.custom_mode = sample.custom_mode if sample.custom_mode is not None else 0
    msg.system_status = sample.system_status if sample.system_status is not None else 0
    msg.gps_fix_type = sample.gps_fix_type if sample.gps_fix_type is not None else 0
    msg.satellites_visible = sample.satellites if sample.satellites is not None else 255
    msg.battery_voltage_v = _f(sample.voltage_v)
    msg.battery_remaining_pct = _f(sample.battery_pct)
    msg.failure_flags = int(sample.failure_flags)
    msg.saturated = saturation.bitmask(sample.saturated)
    link = msg.link
    link.rssi_dbm = _f(rssi_dbm)
    link.snr_db = _f(snr_db)
    if phy is not None:
        link.frequency_hz = phy.frequency_hz
        link.spreading_factor = phy.sf
        link.bandwidth_hz = phy.bandwidth_hz
    link.frame_counter = fcnt32
    link.latency_s = _f(latency_s)
    return msg


# GPS_FIX_TYPE -> NavSatStatus.status (REP-145 style mapping)
def _nav_status(fix: int | None) -> int:
    if fix is None or fix < 2:
        return NavSatStatus.STATUS_NO_FIX
    if fix in (4,):  # DGPS
        return NavSatStatus.STATUS_SBAS_FIX
    if fix in (5, 6):  # RTK float / fixed
        return NavSatStatus.STATUS_GBAS_FIX
    return NavSatStatus.STATUS_FIX


def nav_sat_fix(sample: tcodec.TelemetrySample, frame_id: str) -> NavSatFix:
    msg = NavSatFix()
    msg.header.stamp = stamp(sample.time_unix_s)
    msg.header.frame_id = frame_id
    msg.status.status = _nav_status(sample.gps_fix_type)
    msg.status.service = NavSatStatus.SERVICE_GPS
    msg.latitude = _f(sample.lat_deg)
    msg.longitude = _f(sample.lon_deg)
    # NavSatFix altitude is above the WGS-84 ellipsoid; MAVLink's is AMSL. The geoid offset is
    # not known here, so AMSL is reported and the covariance says "unknown".
    msg.altitude = _f(sample.alt_amsl_m)
    msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_UNKNOWN
    return msg


def battery_state(sample: tcodec.TelemetrySample, frame_id: str) -> BatteryState:
    msg = BatteryState()
    msg.header.stamp = stamp(sample.time_unix_s)
    msg.header.frame_id = frame_id
    msg.voltage = _f(sample.voltage_v)
    msg.percentage = NAN if sample.battery_pct is None else float(sample.battery_pct) / 100.0
    msg.current = msg.charge = msg.capacity = msg.design_capacity = msg.temperature = NAN
    msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
    msg.power_supply_health = BatteryState.POWER_SUPPLY_HEALTH_UNKNOWN
    msg.power_supply_technology = BatteryState.POWER_SUPPLY_TECHNOLOGY_UNKNOWN
    msg.present = sample.voltage_v is not None or sample.battery_pct is not None
    return msg


def link_stats(device: Device, link: LinkCounters, now: float, stale_after_s: float,
               slot: int = 0, timing: SlotTiming | None = None) -> LinkStats:
    """LinkStats of one UAV; ``slot``/``timing``: its TDMA slot and slot timing, if any."""
    msg = LinkStats()
    msg.header.stamp = stamp(now)
    msg.uav_name = device.name
    msg.devaddr = device.devaddr
    msg.frames_received = link.received
    msg.frames_lost = link.lost
    msg.duplicates_rejected = link.duplicates
    msg.replays_rejected = link.replays + link.out_of_window
    msg.mic_failures_rejected = link.mic_failures
    msg.decode_errors = link.decode_errors
    msg.saturated_samples = link.saturated_samples
    msg.delivery_ratio = link.delivery_ratio
    msg.mean_rssi_dbm = link.mean_rssi_dbm
    msg.mean_snr_db = link.mean_snr_db
    msg.mean_latency_s = link.mean_latency_s
    msg.last_frame_counter = link.last_fcnt32 or 0
    age = link.age_s(now)
    msg.seconds_since_last_frame = age
    msg.stale = age > stale_after_s
    msg.tdma_slot = slot
    msg.slot_error_last_ms = msg.slot_error_mean_ms = math.nan
    msg.slot_error_p95_ms = msg.slot_error_max_ms = math.nan
    if timing is not None:
        msg.frames_outside_slot = timing.outside_slot
        if timing.frames:
            msg.slot_error_last_ms = 1e3 * timing.last_error_s
            msg.slot_error_mean_ms = 1e3 * timing.mean_error_s
            msg.slot_error_p95_ms = 1e3 * timing.p95_abs_error_s
            msg.slot_error_max_ms = 1e3 * timing.max_abs_error_s
    return msg


def radio_frame(*, direction: int, node_id: str, data: bytes, phy: PhySettings | None,
                t_unix_s: float, status: str, uav_name: str = "", devaddr: int | None = None,
                rssi_dbm: float | None = None, snr_db: float | None = None,
                crc_ok: bool = True) -> RadioFrame:
    msg = RadioFrame()
    msg.header.stamp = stamp(t_unix_s)
    msg.header.frame_id = node_id
    msg.direction = direction
    msg.node_id = node_id
    msg.uav_name = uav_name
    msg.devaddr = devaddr or 0
    msg.data = bytes(data)
    if phy is not None:
        msg.frequency_hz = phy.frequency_hz
        msg.spreading_factor = phy.sf
        msg.bandwidth_hz = phy.bandwidth_hz
        msg.coding_rate = phy.coding_rate
        msg.airtime_s = float(phy.time_on_air(len(data))) if data else 0.0
    msg.rssi_dbm = _f(rssi_dbm)
    msg.snr_db = _f(snr_db)
    msg.crc_ok = crc_ok
    msg.status = status
    return msg


#: ground/health.py levels -> DiagnosticStatus levels (the field is a byte)
LEVELS = {"ok": DiagnosticStatus.OK[0], "warn": DiagnosticStatus.WARN[0],
          "error": DiagnosticStatus.ERROR[0], "stale": DiagnosticStatus.STALE[0]}


def diagnostic_status(name: str, level: int, message: str, hardware_id: str,
                      values: dict[str, Any]) -> DiagnosticStatus:
    """`level` is DiagnosticStatus.OK/WARN/ERROR/STALE as an int 0..3 (the field is a byte)."""
    status = DiagnosticStatus()
    status.level = bytes([level])
    status.name = name
    status.message = message
    status.hardware_id = hardware_id
    status.values = [KeyValue(key=k, value=_kv(v)) for k, v in values.items()]
    return status


def _kv(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)
