"""An emulated serial module: a family's firmware logic on a pseudo-terminal, run by the loop.

Use (``lora-telemetry sim module`` builds the same through the registry)::

    client = MediumClient("uav1", hub=("127.0.0.1", 47100))         # you create it: you close it
    emu = EmulatedSerialModule(SomeModuleLogic(name="uav1"), "uav1", link_path, client,
                               baud=57600)    # the UART's rate (0: instant, for unit tests)
    emu.start()                      # or emu.serve_forever() in a thread of your own
    ...                              # a driver opens emu.path like /dev/ttyUSB0
    emu.close(); client.close()      # close() stops the loop and removes the pty and its link

``link_path`` None: ``$LORA_TELEMETRY_SIM_DIR/<name>.tty`` (default dir /tmp/lora_sim).
``medium_client`` None: frames take their time on air and go nowhere. ``baud``: the module's
UART, modelled by the device loop (sim/device_loop.py); it is a required argument of the shell,
and :func:`emulated_module` defaults it to the family's (``FamilySpec.serial``).

Fault injection is :meth:`control` with a typed command of core/emulation.py (``Reset``,
``Silence``, ``Garbage``, ``DropAnswers``, ``Unplug``, ``Replug``, ``SetChannelRssi``); the
methods below are shorthands for them that raise :class:`EmulatorRefused` when the module's
logic refuses. Closing follows sim/device_loop.py's rule: the shell closes the pty and the loop
it created, never the medium client.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from lora_telemetry.core.emulation import (
    ControlCommand, DeviceLogic, DropAnswers, Garbage, Refused, Replug, Reset, SetChannelRssi,
    Silence, Unplug,
)
from lora_telemetry.core.errors import LoraTelemetryError
from lora_telemetry.core.uart import BITS_PER_BYTE_8N1
from lora_telemetry.sim.device_loop import DeviceLoop, DeviceShell
from lora_telemetry.sim.pty_port import DEFAULT_PTY_DIR, PtyPort

__all__ = ["EmulatedSerialModule", "EmulatorRefused", "emulated_module"]


class EmulatorRefused(LoraTelemetryError):
    """A fault-injection command the emulated device cannot carry out (the reason says why)."""


class EmulatedSerialModule(DeviceShell):
    """A module's logic behind a pty (see the module docstring)."""

    def __init__(
        self,
        logic: DeviceLogic,
        name: str,
        link_path: str | os.PathLike[str] | None = None,
        medium_client: Any | None = None,
        *,
        baud: int,
        bits: int = BITS_PER_BYTE_8N1,
    ) -> None:
        self.name = name
        link = Path(link_path) if link_path is not None else DEFAULT_PTY_DIR / f"{name}.tty"
        self.port = PtyPort(link)
        try:
            self.loop = DeviceLoop(logic, name, host=self.port, medium=medium_client, baud=baud,
                                   bits=bits)
        except BaseException:
            self.port.close()
            raise

    @property
    def path(self) -> str:
        """What a driver opens: the stable symlink."""
        return self.port.path

    def serve_forever(self) -> None:
        self.loop.serve_forever()

    def wait_line_idle(self, timeout: float = 1.0) -> bool:
        """Wait (bounded) until nothing is crossing the UART (e.g. the power-on banner has
        reached the pty, as it has on a module powered long before its host opens the port);
        whether it is idle. Only meaningful while the loop serves."""
        deadline = time.monotonic() + timeout
        while self.loop.line_pending:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def start(self) -> threading.Thread:
        return self.loop.start()

    def stop(self) -> None:
        self.loop.stop()

    def close(self) -> None:
        """Stop the loop, then remove the pty and its link (idempotent)."""
        self.loop.close()
        self.port.close()

    # -- fault injection: shorthands for control() --

    def _must(self, command: ControlCommand) -> None:
        answer = self.control(command)
        if isinstance(answer, Refused):
            raise EmulatorRefused(answer.reason)

    def inject_garbage(self, data: bytes | None = None) -> None:
        self._must(Garbage(None if data is None else bytes(data)))

    def reset(self, during_next_tx: bool = False) -> None:
        self._must(Reset(during_next_tx))

    def drop_answers(self, count: int = 1) -> None:
        self._must(DropAnswers(count))

    def unplug(self, replug_after: float | None = None) -> None:
        self._must(Unplug(replug_after))

    def replug(self) -> None:
        self._must(Replug())

    def set_silent(self, on: bool = True) -> None:
        self._must(Silence(on))

    def set_channel_rssi(self, rssi_dbm: float | None) -> None:
        self._must(SetChannelRssi(rssi_dbm))


def emulated_module(family: str, name: str, link_path: str | os.PathLike[str] | None = None,
                    medium_client: Any | None = None, *, baud: int | None = None,
                    **options: Any) -> EmulatedSerialModule:
    """The emulated module of serial ``family`` (the registry's) with its emulator options,
    its UART at ``baud`` (None: the family's; 0: instant)."""
    from lora_telemetry.radios import registry

    spec = registry.module_family(family)
    line = spec.serial
    if line is None:
        raise LoraTelemetryError(f"{spec.title} declares no serial settings")
    return EmulatedSerialModule(spec.emulator_logic(name, **options), name, link_path,
                                medium_client, baud=line.baud if baud is None else baud,
                                bits=line.bits_per_byte)
