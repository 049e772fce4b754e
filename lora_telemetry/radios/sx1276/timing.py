"""The SX1276's command-to-air and air-to-host timing (issue 13), from its datasheet.

* **TX**: from the RegOpMode write that enters TX (from Standby, as the driver does) to the
  first symbol: TS_FS + TS_TR (core.phy ``sx127x_tx_startup_s``; TS_FS 60 us, datasheet 2.5.2,
  thesis line ~12676; TS_TR 5 us + 1.25 PaRamp, 4.2.5.1, line ~15224), with the PaRamp the
  driver programs (PA_RAMP_50US, the thesis gateway's 50 us, line ~8649): 127.5 us. The
  emulated chip takes the ramp from its own RegPaRamp, through the same formula.
* **RX**: assumption: RxDone (and DIO0, when mapped to it) rises as the last symbol has been
  demodulated, i.e. at the frame's end on the air; the datasheet gives no figure.
* No jitter (assumption): the chip is a crystal-clocked state machine and the datasheet gives
  typical values only.

There is no serial line: the host's SPI transfer of RegOpMode (16 bits at 0.5-10 MHz) is
counted in the host's own time.
"""

from __future__ import annotations

from lora_telemetry.core.latency import Latency
from lora_telemetry.radios.sx1276 import registers as R

__all__ = ["RX_LATENCY", "TX_LATENCY"]

TX_LATENCY = Latency(R.tx_startup_s(R.PA_RAMP_50US))
RX_LATENCY = Latency(0.0)
