"""A power supply on the lab network: one process owns the instrument, every script uses it.

    python3 instrument_server.py            # serves power_supply.* until Ctrl-C

Then, from any computer of the network:

    labc call power_supply.set_voltage 3.3
    python3 -c 'import labc; print(labc.network.power_supply.measure())'

The instrument is simulated (no hardware needed): its measurements take 50-200 ms, as a real
one's do over GPIB or USB. To drive a real one, replace the bodies of _write and _read with the
driver's calls (PyVISA, PyMeasure, a vendor SDK); nothing else changes.
"""

import random
import time
from datetime import datetime, timezone

import labc


class PowerSupply:
    def __init__(self, name="PSU-1"):
        self.name = name
        self._setpoint = 0.0  # volts, what the front panel says
        self._load = 10.0  # ohms: the device under test

    # --- the "hardware": slow, and not safe to use from two threads at once ---

    def _write(self, volts):
        time.sleep(0.05)  # a command over the bus
        if volts != self._setpoint:
            self._setpoint = volts
            # Whoever follows the output (a logger, a plot, an interlock) learns of each change
            # without polling, sweeps included. publish() returns once the message has left.
            labc.publish("lab.psu.voltage", volts)

    def _read(self):
        time.sleep(random.uniform(0.05, 0.2))  # the instrument integrates before it answers
        volts = max(0.0, self._setpoint + random.gauss(0, 0.0005))  # it reads no negative output
        return volts, volts / self._load

    # --- what the network may call: power_supply.<name> ---
    #
    # exclusive=True: one call at a time, in the order they came, for every exclusive method of
    # this instance (they share one queue), while the process goes on serving the others. A
    # power supply has one front panel: if two callers' set_voltage() interleaved, each would
    # write its setpoint, then read back the other's. labc queues the second caller instead.
    # It is on the methods, not in serve(), so that however the class is served (this file,
    # `python3 -m labc serve`, a service) the instrument is protected.

    @labc.register  # not exclusive: answers at once, even during a sweep
    def identify(self) -> str:
        return f"labc simulated power supply {self.name}"

    @labc.register(exclusive=True)
    def set_voltage(self, volts: float) -> float:
        """Sets the output and returns what it then measures (one command: nobody slips in between)."""
        if not 0 <= volts <= 30:
            raise ValueError(f"{volts} V is outside 0..30 V")
        self._write(volts)
        measured, _ = self._read()
        return round(measured, 4)

    @labc.register(exclusive=True)
    def measure(self) -> dict:
        """One reading, stamped: the datetime arrives as a Date in TypeScript, a datetime in Python."""
        volts, amps = self._read()
        return {"voltage": round(volts, 4), "current": round(amps, 5), "time": datetime.now(timezone.utc)}

    @labc.register(exclusive=True)
    def sweep(self, start: float, stop: float, steps: int):
        """Steps the output from start to stop, yielding each point as it is measured.

        A generator streams: the caller reads points as they come (labc.stream), a slow reader
        slows the sweep, and a caller that stops reading ends it, so the finally below always
        puts the output back. The sweep holds the instrument until it ends (exclusive).
        """
        before = self._setpoint
        try:
            for i in range(steps):
                volts = start + (stop - start) * i / max(1, steps - 1)
                self._write(volts)
                measured, amps = self._read()
                yield {"set": round(volts, 4), "voltage": round(measured, 4), "current": round(amps, 5)}
        finally:
            self._write(before)


if __name__ == "__main__":
    psu = PowerSupply()
    # block=False returns once the functions are registered, so that the line below means
    # "ready"; wait() then serves until Ctrl-C or SIGTERM and stops without losing a call.
    server = labc.serve(psu, block=False)
    print(f"{psu.name}: serving power_supply on {labc.localhost.name}; Ctrl-C stops", flush=True)
    server.wait()
