"""MAVLink messages of a simulated vehicle's state: one encoder per message it sends.

Each encoder turns a :class:`~lora_telemetry.sim.vehicle.trajectories.VehicleTruth` into the
message an ArduCopter would send in that state, in MAVLink's units (degE7, mm, cm/s, cdeg) and
enumerations (QUADROTOR, ARDUPILOTMEGA, the mode flags of a copter in GUIDED/AUTO/RTL, a
healthy copter's sensors, a 4S LiPo). :data:`ENCODERS` maps each message name to its encoder;
the simulated autopilot sends exactly these.
"""

from __future__ import annotations

from typing import Any, Callable

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.sim.vehicle.trajectories import VehicleTruth

__all__ = ["ENCODERS", "MESSAGE_NAME_OF_ID", "UINT16_MAX", "degrees_to_e7"]

MAV_TYPE_QUADROTOR = 2
MAV_AUTOPILOT_ARDUPILOTMEGA = 3
MAV_MODE_FLAG_CUSTOM_MODE_ENABLED = 1
MAV_MODE_FLAG_GUIDED_ENABLED = 8
MAV_MODE_FLAG_STABILIZE_ENABLED = 16
MAV_MODE_FLAG_SAFETY_ARMED = 128
MAV_BATTERY_TYPE_LIPO = 1
MAV_BATTERY_CHARGE_STATE_OK = 1
#: UINT16_MAX: "unknown" in MAVLink's uint16 fields (a heading, an unused cell voltage).
UINT16_MAX = 0xFFFF

# Healthy copter sensors for SYS_STATUS: gyro, accel, mag, baro, GPS, rate/attitude/yaw/alt/xy
# control, motor outputs, RC receiver, AHRS, battery (MAV_SYS_STATUS_SENSOR bits).
_SENSORS = 0x1 | 0x2 | 0x4 | 0x8 | 0x20 | 0x400 | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x8000
_SENSORS |= 0x10000 | 0x200000 | 0x2000000


def degrees_to_e7(deg: float) -> int:
    """Degrees as MAVLink's int32 degrees * 1e7."""
    return int(round(deg * 1e7))


def _enc_heartbeat(mav: Any, s: VehicleTruth) -> Any:
    base = MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | MAV_MODE_FLAG_STABILIZE_ENABLED
    if s.mode_name in ("GUIDED", "AUTO", "RTL", "LOITER", "BRAKE", "POSHOLD"):  # as ArduCopter
        base |= MAV_MODE_FLAG_GUIDED_ENABLED
    if s.armed:
        base |= MAV_MODE_FLAG_SAFETY_ARMED
    return mav.heartbeat_encode(
        MAV_TYPE_QUADROTOR, MAV_AUTOPILOT_ARDUPILOTMEGA, base, s.custom_mode, s.system_status, 3
    )


def _enc_global_position_int(mav: Any, s: VehicleTruth) -> Any:
    return mav.global_position_int_encode(
        s.time_boot_ms % (1 << 32), degrees_to_e7(s.lat_deg), degrees_to_e7(s.lon_deg),
        int(round(s.alt_amsl_m * 1000)), int(round(s.alt_rel_m * 1000)),
        int(round(s.vn_mps * 100)), int(round(s.ve_mps * 100)), int(round(s.vd_mps * 100)),
        int(round(s.heading_deg * 100)) % 36000,
    )  # fmt: skip


def _enc_gps_raw_int(mav: Any, s: VehicleTruth) -> Any:
    return mav.gps_raw_int_encode(
        int(s.time_unix_s * 1e6), s.gps_fix_type, degrees_to_e7(s.lat_deg),
        degrees_to_e7(s.lon_deg), int(round(s.alt_amsl_m * 1000)), 70, 120,
        int(round(s.ground_speed_mps * 100)), int(round(s.heading_deg * 100)) % 36000,
        s.satellites,
    )  # fmt: skip


def _enc_vfr_hud(mav: Any, s: VehicleTruth) -> Any:
    throttle = 0 if not s.armed else min(100, int(35 + 3 * s.ground_speed_mps + 8 * s.climb_mps))
    return mav.vfr_hud_encode(
        s.ground_speed_mps, s.ground_speed_mps, int(round(s.heading_deg)) % 360, max(0, throttle),
        s.alt_amsl_m, s.climb_mps,
    )  # fmt: skip


def _enc_attitude(mav: Any, s: VehicleTruth) -> Any:
    return mav.attitude_encode(
        s.time_boot_ms % (1 << 32), s.roll_rad, s.pitch_rad, s.yaw_rad, 0.0, 0.0, 0.0
    )


def _enc_sys_status(mav: Any, s: VehicleTruth) -> Any:
    return mav.sys_status_encode(
        _SENSORS, _SENSORS, _SENSORS, 180, int(round(s.voltage_v * 1000)),
        int(round(s.current_a * 100)), int(round(s.battery_pct)), 0, 0, 0, 0, 0, 0,
    )  # fmt: skip


def _enc_battery_status(mav: Any, s: VehicleTruth) -> Any:
    cells = 4
    cell_mv = int(round(s.voltage_v * 1000 / cells))
    voltages = [cell_mv] * cells + [UINT16_MAX] * (10 - cells)
    return mav.battery_status_encode(
        0, 0, MAV_BATTERY_TYPE_LIPO, 32767, voltages, int(round(s.current_a * 100)),
        int(round(s.consumed_mah)), -1, int(round(s.battery_pct)), 0,
        MAV_BATTERY_CHARGE_STATE_OK, [0, 0, 0, 0], 0, 0,
    )  # fmt: skip


def _enc_system_time(mav: Any, s: VehicleTruth) -> Any:
    return mav.system_time_encode(int(s.time_unix_s * 1e6), s.time_boot_ms % (1 << 32))


ENCODERS: dict[str, Callable[[Any, VehicleTruth], Any]] = {
    "HEARTBEAT": _enc_heartbeat,
    "GLOBAL_POSITION_INT": _enc_global_position_int,
    "GPS_RAW_INT": _enc_gps_raw_int,
    "VFR_HUD": _enc_vfr_hud,
    "ATTITUDE": _enc_attitude,
    "SYS_STATUS": _enc_sys_status,
    "BATTERY_STATUS": _enc_battery_status,
    "SYSTEM_TIME": _enc_system_time,
}
MESSAGE_NAME_OF_ID = {getattr(mavlink2, f"MAVLINK_MSG_ID_{name}"): name for name in ENCODERS}
