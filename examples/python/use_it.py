"""Uses the power supply of instrument_server.py from any computer of the network.

    python3 use_it.py
"""

import threading

import labc

psu = labc.network.power_supply  # the functions power_supply.*, wherever they are served

# Follow the output: the server publishes lab.psu.voltage on each change. A subscriber is
# served like a function, so the script serves too (block=False: and goes on).
heard = []
anything = threading.Event()


@labc.subscribe("lab.psu.voltage")
def on_voltage(volts):
    heard.append(volts)
    anything.set()


labc.serve(block=False)

print(psu.identify())

# One command: set, then read back, with no other caller's command in between (exclusive).
print(f"set 3.3 V, reads {psu.set_voltage(3.3):.2f} V")

m = psu.measure()  # a dict; its time is a datetime (a Date on the wire)
print(f"measured {m['voltage']:.2f} V, {m['current'] * 1000:.0f} mA at {m['time']:%H:%M:%S} UTC")

# A generator on the server streams its points as they are measured.
for point in labc.stream("power_supply.sweep", 0.0, 5.0, 6):
    print(f"  sweep: set {point['set']:.1f} V, reads {point['voltage']:.2f} V")

anything.wait(2)
print(f"heard lab.psu.voltage {len(heard)} times, the last {heard[-1] if heard else None} V")

# The server's exception arrives as a RemoteError naming its class.
try:
    psu.set_voltage(99)
except labc.RemoteError as error:
    print(f"refused: {error.remote_name}: {error}")

labc.close()  # stops serving the subscriber (also done at exit)
