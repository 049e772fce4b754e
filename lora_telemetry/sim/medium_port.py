"""The device loop's one adapter to the radio medium: typed events in, typed actions out.

It wraps a :class:`~lora_telemetry.sim.medium.MediumClient` (or a stub honouring its methods:
``transmit``, ``listen``, ``standby``, ``next_event``, ``fileno``): the medium's
:class:`RxEvent` and :class:`TxDoneEvent` (core/emulation.py), told apart by their type, go to
the logic as they are; the logic's :class:`Transmit`, :class:`Listen` and :class:`Standby`
become client calls. Anything else a client returns is counted and dropped; a client error
is counted and logged, never raised into the loop.

Without a client (a device with no medium) or when the medium cannot take a frame, a
transmission still lasts its time on air: :meth:`transmit` says so by returning the airtime the
loop must time itself (then it delivers TxDoneEvent), as a real radio keys up whether anyone
listens or not.

The adapter never closes the client: whoever created it does (rule in sim/device_loop.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from lora_telemetry.core.emulation import DeviceEvent, RxEvent, TransmitFailed, TxDoneEvent
from lora_telemetry.core.errors import LoraTelemetryError
from lora_telemetry.core.phy import PhySettings

__all__ = ["MediumPort"]

log = logging.getLogger(__name__)

#: Events taken from the medium per loop turn at most (never starves the host's UART).
MAX_EVENTS_PER_TURN = 64


class MediumPort:
    def __init__(self, client: Any | None, name: str) -> None:
        self.client = client
        self.name = name
        self.counters: Counter[str] = Counter()
        self.listening = False

    @property
    def attached(self) -> bool:
        return self.client is not None

    def fileno(self) -> int | None:
        """The client's socket, if there is a usable one."""
        if self.client is None:
            return None
        try:
            fd = int(self.client.fileno())
        except (OSError, ValueError, LoraTelemetryError):
            return None
        return fd if fd >= 0 else None

    def transmit(self, data: bytes, phy: PhySettings,
                 power_dbm: float | None) -> tuple[float | None, list[DeviceEvent]]:
        """Put a frame on the air. Returns (airtime the loop must time itself, or None when
        the medium will send TxDone; events for the logic, e.g. TransmitFailed)."""
        self.listening = False
        if self.client is None:
            return phy.time_on_air(len(data)), []
        try:
            self.client.transmit(data, phy, power_dbm=power_dbm)
        except (OSError, LoraTelemetryError) as exc:
            self._failed("transmit", exc)
            return phy.time_on_air(len(data)), [TransmitFailed(str(exc))]
        return None, []

    def listen(self, phy: PhySettings) -> None:
        self.listening = True
        if self.client is not None:
            try:
                self.client.listen(phy)
            except (OSError, LoraTelemetryError) as exc:
                self._failed("listen", exc)

    def standby(self) -> None:
        self.listening = False
        if self.client is not None:
            try:
                self.client.standby()
            except (OSError, LoraTelemetryError) as exc:
                self._failed("standby", exc)

    def drain(self) -> list[DeviceEvent]:
        """The events waiting on the client (bounded), typed for the logic."""
        if self.client is None:
            return []
        out: list[DeviceEvent] = []
        for _ in range(MAX_EVENTS_PER_TURN):
            try:
                event = self.client.next_event(timeout=0)
            except (OSError, LoraTelemetryError) as exc:
                self._failed("receive", exc)
                break
            if event is None:
                break
            if isinstance(event, (RxEvent, TxDoneEvent)):
                out.append(event)
            else:
                self.counters["medium_unknown_events"] += 1
        return out

    def _failed(self, what: str, exc: Exception) -> None:
        self.counters["medium_errors"] += 1
        log.warning("%s: medium %s failed: %s", self.name, what, exc)
