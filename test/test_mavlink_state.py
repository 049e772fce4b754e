"""VehicleState: autopilot selection, unit conversions, freshness, staleness, reboots, modes.

Pure tests: messages are dicts shaped like pymavlink's ``msg.to_dict()``, times are passed in
(a simulated clock). Field units are those of MAVLink common.xml (lat/lon degE7, alt mm,
speeds cm/s, hdg cdeg, voltage mV, current cA).
"""

from __future__ import annotations

import math

import pytest
from pymavlink import mavutil

from lora_telemetry.core.codec import HL_FAILURE_FLAGS, VehicleFamily, px4_custom_mode
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.mavlink.state import (
    EVENT_AUTOPILOT,
    EVENT_REBOOT,
    EVENT_RESUMED,
    VehicleState,
    failure_flags_from_sys_status,
    is_autopilot_heartbeat,
)


def hb(mav_type=2, autopilot=3, base_mode=1, custom_mode=0, system_status=3):
    return {"mavpackettype": "HEARTBEAT", "type": mav_type, "autopilot": autopilot,
            "base_mode": base_mode, "custom_mode": custom_mode,
            "system_status": system_status, "mavlink_version": 3}  # fmt: skip


def gpi(boot_ms=1000, lat=473977418, lon=85455939, alt=488123, rel=30456, vx=300, vy=-400,
        vz=-150, hdg=27012):  # fmt: skip
    return {"mavpackettype": "GLOBAL_POSITION_INT", "time_boot_ms": boot_ms, "lat": lat,
            "lon": lon, "alt": alt, "relative_alt": rel, "vx": vx, "vy": vy, "vz": vz,
            "hdg": hdg}  # fmt: skip


def sys_status(mv=16200, ca=1250, pct=87, present=0, enabled=0, health=0):
    return {"mavpackettype": "SYS_STATUS", "voltage_battery": mv, "current_battery": ca,
            "battery_remaining": pct, "onboard_control_sensors_present": present,
            "onboard_control_sensors_enabled": enabled,
            "onboard_control_sensors_health": health}  # fmt: skip


def system_time(unix_us, boot_ms):
    return {"mavpackettype": "SYSTEM_TIME", "time_unix_usec": unix_us, "time_boot_ms": boot_ms}


def selected_state(**kwargs) -> VehicleState:
    state = VehicleState(**kwargs)
    assert state.update(hb(), 0.0).events == (EVENT_AUTOPILOT,)
    return state


def test_autopilot_selection_skips_gcs_camera_and_gimbal() -> None:
    # The ArduSub log's components (testdata/tlogs/README.md): a GCS at 255/190, a camera at
    # 1/100 (MAV_TYPE_CAMERA 30), an onboard computer at 1/194 (MAV_TYPE_ONBOARD_CONTROLLER
    # 18), all with MAV_AUTOPILOT_INVALID (8), beside the autopilot at 1/1
    # (MAV_TYPE_SUBMARINE 12, MAV_AUTOPILOT_ARDUPILOTMEGA 3).
    state = VehicleState()
    assert not state.update(hb(6, 8), 0.0, 255, 190).accepted
    assert not state.update(hb(30, 8), 0.1, 1, 100).accepted
    assert not state.update(hb(18, 8), 0.2, 1, 194).accepted
    assert not state.update(gpi(), 0.3, 1, 1).accepted  # no autopilot heartbeat yet
    result = state.update(hb(12, 3, base_mode=81, custom_mode=19), 0.4, 1, 1)
    assert result.accepted and result.events == (EVENT_AUTOPILOT,)
    assert state.autopilot == (1, 1)
    assert state.family is VehicleFamily.ARDUSUB
    assert state.counters["before_autopilot"] == 4
    # Afterwards, the camera and the GCS are ignored and counted per source.
    assert not state.update(gpi(lat=1), 0.5, 1, 100).accepted
    assert not state.update(hb(6, 8), 0.6, 255, 190).accepted
    assert state.ignored_by_source == {"1/100": 1, "255/190": 1}
    assert state.value("position") is None


def test_an_autopilot_on_another_component_is_not_the_vehicle() -> None:
    # Only component 1 (MAV_COMP_ID_AUTOPILOT1) by default: a second flight stack on 1/2 is not
    # picked, but can be asked for.
    assert VehicleState().update(hb(), 0.0, 1, 2).accepted is False
    assert VehicleState(component_id=2).update(hb(), 0.0, 1, 2).accepted is True


def test_system_id_parameter_picks_that_vehicle() -> None:
    state = VehicleState(system_id=2)
    assert not state.update(hb(), 0.0, 1, 1).accepted
    assert state.update(hb(), 0.1, 2, 1).accepted
    assert state.autopilot == (2, 1)
    state.update(gpi(lat=111), 0.2, 1, 1)
    assert state.value("position") is None
    assert state.ignored_by_source["1/1"] == 1


def test_is_autopilot_heartbeat() -> None:
    assert is_autopilot_heartbeat(3, 2)  # ArduPilot quadrotor
    assert is_autopilot_heartbeat(12, 1)  # PX4 fixed wing
    assert not is_autopilot_heartbeat(8, 2)  # MAV_AUTOPILOT_INVALID
    for non_vehicle in (6, 18, 26, 27, 30):  # GCS, onboard, gimbal, ADS-B, camera
        assert not is_autopilot_heartbeat(3, non_vehicle)


def test_global_position_int_units() -> None:
    state = selected_state()
    state.update(gpi(), 1.0)
    lat, lon = state.value("position")
    assert lat == pytest.approx(47.3977418, abs=1e-12)
    assert lon == pytest.approx(8.5455939, abs=1e-12)
    assert state.value("alt_amsl_m") == pytest.approx(488.123)
    assert state.value("alt_rel_m") == pytest.approx(30.456)
    assert state.value("heading_deg") == pytest.approx(270.12)
    assert state.value("ground_speed_mps") == pytest.approx(5.0)  # hypot(3, -4) m/s
    assert state.value("climb_mps") == pytest.approx(1.5)  # vz is positive down
    # hdg UINT16_MAX means unknown: the previous heading stays.
    state.update(gpi(hdg=65535), 2.0)
    assert state.value("heading_deg") == pytest.approx(270.12)
    # 0/0 is ArduPilot's "no position yet".
    state.update(gpi(lat=0, lon=0), 3.0)
    assert state.value("position") is None


def test_newest_value_wins_between_messages() -> None:
    state = selected_state()
    state.update(gpi(hdg=9000), 1.0)
    state.update({"mavpackettype": "VFR_HUD", "airspeed": 0.0, "groundspeed": 7.5,
                  "heading": 95, "throttle": 40, "alt": 500.0, "climb": -0.5}, 1.1)  # fmt: skip
    assert state.value("heading_deg") == 95.0
    assert state.value("ground_speed_mps") == 7.5
    assert state.value("climb_mps") == -0.5
    state.update(gpi(hdg=10000), 1.2)
    assert state.value("heading_deg") == 100.0


def test_battery_from_sys_status_and_battery_status() -> None:
    state = selected_state()
    state.update(sys_status(mv=16200, ca=1250, pct=87), 1.0)
    assert state.value("voltage_v") == pytest.approx(16.2)
    assert state.value("current_a") == pytest.approx(12.5)
    assert state.value("battery_pct") == 87.0
    cells = [4100, 4101, 4099, 4100] + [65535] * 6  # UINT16_MAX: no such cell
    battery = {"mavpackettype": "BATTERY_STATUS", "id": 0, "voltages": cells,
               "voltages_ext": [0, 0, 0, 0], "current_battery": 900, "battery_remaining": 80}
    state.update(battery, 2.0)
    assert state.value("voltage_v") == pytest.approx(16.4)
    assert state.value("battery_pct") == 80.0
    # Battery 1 is not the vehicle's primary battery; -1 and UINT16_MAX mean "not sent".
    state.update({**battery, "id": 1, "battery_remaining": 5}, 3.0)
    state.update(sys_status(mv=65535, ca=-1, pct=-1), 4.0)
    assert state.value("battery_pct") == 80.0
    assert state.value("voltage_v") == pytest.approx(16.4)


def test_fields_expire_and_report_their_age() -> None:
    state = selected_state(field_timeout_s=10.0)
    state.update(sys_status(pct=50), 100.0)
    state.update(gpi(), 105.0)
    assert state.age("battery_pct", 108.0) == pytest.approx(8.0)
    assert state.ages(108.0)["position"] == pytest.approx(3.0)
    assert state.sample(109.0).battery_pct == 50.0
    sample = state.sample(110.5)
    assert sample.battery_pct is None  # older than 10 s: unknown, not presented as current
    assert sample.lat_deg is not None
    assert state.age("satellites", 110.0) is None


def test_stale_after_silence_on_a_simulated_clock() -> None:
    state = selected_state(stale_timeout_s=3.0)  # heartbeat at t = 0
    assert not state.is_stale(2.9)
    assert state.is_stale(3.1)
    # Other messages do not make a silent autopilot fresh: only HEARTBEAT/GLOBAL_POSITION_INT.
    state.update(sys_status(), 3.2)
    assert state.is_stale(3.3)
    result = state.update(gpi(), 3.5)
    assert EVENT_RESUMED in result.events
    assert not state.is_stale(3.6)
    assert state.counters["stale_periods"] == 1
    assert state.counters["resumed"] == 1
    # A gap longer than the timeout is a resume even if nobody asked is_stale in between.
    assert EVENT_RESUMED in state.update(hb(), 10.0).events
    assert VehicleState().is_stale(0.0)  # nothing received yet


def test_reboot_detected_when_boot_clock_restarts() -> None:
    state = selected_state()
    assert state.update(system_time(0, 100_000), 1.0).events == ()
    assert state.update(system_time(0, 101_000), 2.0).events == ()
    # The rover log (testdata) restarts from 8451 ms to 2442 ms: a SITL reboot.
    assert state.update(system_time(0, 2_442), 3.0).events == (EVENT_REBOOT,)
    assert state.counters["reboots"] == 1
    # The VTOL SITL log steps back 1.2 s at 611 s (611741 -> 610541 ms): a glitch, no reboot.
    state.update(gpi(boot_ms=611_741), 4.0)
    assert state.update(gpi(boot_ms=610_541), 4.1).events == ()
    assert state.counters["reboots"] == 1


def test_sample_time_from_autopilot_utc() -> None:
    t0 = 1_700_000_000.0
    state = selected_state()
    state.update(gpi(boot_ms=10_400), t0 + 0.3)
    assert state.sample(t0 + 0.3).time_unix_s == t0 + 0.3  # no UTC yet: the receive time
    # ArduPilot sends time_unix_usec = 0 until its GPS has the time.
    state.update(system_time(0, 10_500), t0 + 0.4)
    assert state.counters["system_time_unset"] == 1
    assert state.sample(t0 + 0.4).time_unix_s == t0 + 0.3
    # UTC 1 700 000 000 s at boot time 10.5 s; a position measured at 10.75 s arrives 0.3 s
    # later: its time is the measurement's, without the link's delay.
    state.update(system_time(1_700_000_000_000_000, 10_500), t0 + 0.05)
    state.update(gpi(boot_ms=10_750), t0 + 0.55)
    assert state.sample(t0 + 0.55).time_unix_s == pytest.approx(t0 + 0.25)
    # A clock 16 s off (the VTOL SITL log's SYSTEM_TIME against its record times) is not UTC.
    state.update(system_time(int((t0 - 16.0) * 1e6), 11_000), t0 + 0.6)
    state.update(gpi(boot_ms=11_100), t0 + 0.7)
    assert state.sample(t0 + 0.7).time_unix_s == t0 + 0.7
    assert state.counters["system_time_disagrees"] == 1
    # Replays use the log's receive times, whatever the autopilot says.
    replay = selected_state(time_source="receive")
    replay.update(system_time(1_700_000_000_000_000, 10_500), 7.0)
    replay.update(gpi(boot_ms=10_750), 7.5)
    assert replay.sample(7.5).time_unix_s == 7.5


def test_mode_names_follow_pymavlink_and_the_codec() -> None:
    state = VehicleState()
    msg = hb(2, 3, base_mode=1 | 128, custom_mode=4, system_status=4)
    state.update(msg, 0.0)
    sample = state.sample(0.0)
    assert (sample.custom_mode, sample.mode_name, sample.armed) == (4, "GUIDED", True)
    # pymavlink's own ArduCopter map agrees (mavutil.mode_mapping_byname(MAV_TYPE_QUADROTOR)).
    assert mavutil.mode_mapping_byname(2)["GUIDED"] == 4
    assert state.pymavlink_mode == "GUIDED"
    state.update(hb(2, 3, base_mode=1, custom_mode=99), 1.0)
    assert state.sample(1.0).mode_name == "Mode(99)"
    assert state.sample(1.0).armed is False
    # Without MAV_MODE_FLAG_CUSTOM_MODE_ENABLED an ArduPilot custom_mode means nothing.
    state.update(hb(2, 3, base_mode=0, custom_mode=4), 2.0)
    assert state.sample(2.0).custom_mode is None
    assert state.counters["mode_name_mismatch"] == 0


def test_px4_modes_use_the_codec_names() -> None:
    state = VehicleState()
    mission = px4_custom_mode(4, 4)  # AUTO / AUTO_MISSION
    state.update(hb(2, 12, base_mode=1 | 4 | 8 | 16, custom_mode=mission), 0.0)
    assert state.family is VehicleFamily.PX4
    assert state.pymavlink_mode == "MISSION"  # mavutil.interpret_px4_mode
    assert state.sample(0.0).mode_name == "AUTO_MISSION"
    assert state.counters["mode_name_mismatch"] == 0


def test_failure_flags_from_unhealthy_sensors() -> None:
    gps, gyro, battery, ahrs = 0x20, 0x1, 0x2000000, 0x200000  # MAV_SYS_STATUS_SENSOR bits
    present = enabled = gps | gyro | battery | ahrs
    flags = failure_flags_from_sys_status(present, enabled, health=gyro | ahrs)
    assert flags == HL_FAILURE_FLAGS["GPS"] | HL_FAILURE_FLAGS["BATTERY"]
    # A disabled sensor is not a failure.
    assert failure_flags_from_sys_status(present, enabled & ~gps, gyro | ahrs) == 128
    state = selected_state()
    state.update(sys_status(present=present, enabled=enabled, health=gyro | battery), 1.0)
    expected = HL_FAILURE_FLAGS["GPS"] | HL_FAILURE_FLAGS["ESTIMATOR"]
    assert state.sample(1.0).failure_flags == expected


def test_gps_raw_int_fix_and_satellites() -> None:
    state = selected_state()
    raw = {"mavpackettype": "GPS_RAW_INT", "fix_type": 3, "satellites_visible": 14}
    state.update(raw, 1.0)
    assert (state.value("gps_fix_type"), state.value("satellites")) == (3, 14)
    state.update({**raw, "satellites_visible": 255}, 2.0)  # 255: unknown
    assert state.value("satellites") is None


def test_malformed_messages_are_counted_not_raised() -> None:
    state = selected_state()
    assert not state.update({"mavpackettype": "GLOBAL_POSITION_INT", "lat": 1}, 1.0).accepted
    assert not state.update({**gpi(), "lat": "north"}, 1.1).accepted
    assert not state.update({**gpi(), "vx": math.nan}, 1.2).accepted
    assert not state.update(object(), 1.3).accepted
    assert state.counters["malformed"] == 4
    assert state.value("position") is None
    assert state.update(gpi(), 2.0).accepted  # and it keeps working


def test_bad_configuration_is_a_config_error() -> None:
    bad = ({"system_id": 0}, {"system_id": 256}, {"stale_timeout_s": 0},
           {"field_timeout_s": -1}, {"time_source": "ntp"}, {"component_id": 0})  # fmt: skip
    # ("gps" became a time source with TDMA, issue 13: "ntp" is the unknown one now.)
    for kwargs in bad:
        with pytest.raises(ConfigError):
            VehicleState(**kwargs)
