"""Ground side of issue 14: a command for one registered UAV, as a frame ready for the air.

Order (LoRaWAN 1.0 section 4.3.1.5: the device follows FCntDown only if it has incremented):
check the command (expiry, arguments; a refused command costs no counter), reserve the
FCntDown durably in :class:`~lora_telemetry.persist.GroundCounterStore` (written and fsync'd
before the frame exists), then build the frame (``core.command.build_command_downlink``). A
restart, crash or power cut between reservation and transmission skips a counter (the drone
counts it as lost), it never reuses one.
"""

from __future__ import annotations

from dataclasses import dataclass

from lora_telemetry.core import command as cmd
from lora_telemetry.core.gateway import Device
from lora_telemetry.persist import GroundCounterStore, session_fingerprint

__all__ = ["CommandDownlink", "build_downlink_for"]


@dataclass(frozen=True)
class CommandDownlink:
    """A command frame for the air: the PHYPayload and the FCntDown it used."""

    device: str
    devaddr: int
    fcnt_down: int
    command: cmd.Command
    phy: bytes


def build_downlink_for(store: GroundCounterStore, device: Device, command: cmd.Command,
                       now_unix_s: float,
                       max_lifetime_s: float = cmd.MAX_COMMAND_LIFETIME_S) -> CommandDownlink:
    """Check, reserve FCntDown durably, build. Raises CommandBuildError (nothing reserved)
    or StateFileError (the counter could not be stored: send nothing)."""
    cmd.command_payload_to_send(command, now_unix_s, max_lifetime_s)
    session = session_fingerprint(device.nwkskey, device.appskey)
    fcnt = store.reserve_fcnt_down(device.devaddr, session)
    phy = cmd.build_command_downlink(command, devaddr=device.devaddr, nwkskey=device.nwkskey,
                                     appskey=device.appskey, fcnt_down=fcnt,
                                     now_unix_s=now_unix_s, max_lifetime_s=max_lifetime_s)
    return CommandDownlink(device.name, device.devaddr, fcnt, command, phy)


