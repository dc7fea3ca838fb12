"""Watches the power supply: prints each change of its output as it is published, and a reading
every second. Run it beside other scripts using the instrument (on any computer): its readings
wait their turn behind their commands, never in the middle of one.

    python3 monitor.py          # until Ctrl-C
"""

import time

import labc


@labc.subscribe("lab.psu.voltage")
def output_changed(volts):
    # flush: lines show at once also when the output goes to a file or a pipe.
    print(f"output set to {volts} V", flush=True)


labc.serve(block=False)  # serves the subscriber, and goes on

try:
    while True:
        m = labc.network.power_supply.measure()
        print(f"{m['time']:%H:%M:%S}  {m['voltage']:6.3f} V  {m['current'] * 1000:6.1f} mA", flush=True)
        time.sleep(1)
except KeyboardInterrupt:
    pass  # labc closes itself at exit
