// The power supply of instrument_server.py, used from Node: the same calls as use_it.py.
//
//   npm install labc      (in a folder with "type": "module", or name the file .mjs)
//   node use_it.mjs
//
// Nothing here knows the server is Python: names, arguments, results, streams, publications
// and errors are labc's, whichever language serves them.
import * as labc from "labc";

const psu = labc.network.power_supply;
console.log(await psu.identify());

// Follow the output (the Python server publishes lab.psu.voltage on each change).
const heard = [];
await labc.subscribe((volts) => heard.push(volts), "lab.psu.voltage");

const reads = await psu.set_voltage(5);
console.log(`set 5 V, reads ${reads.toFixed(2)} V`);

// The datetime the server stamped arrives as a Date.
const m = await psu.measure();
console.log(`measured ${m.voltage.toFixed(2)} V, ${(m.current * 1000).toFixed(0)} mA at ${m.time.toISOString().slice(11, 19)} UTC`);

// A Python generator, read as it runs: three points, then `break` stops the sweep there
// (its finally puts the output back).
let n = 0;
for await (const point of labc.stream("power_supply.sweep", 5, 0, 11)) {
  console.log(`  sweep: set ${point.set.toFixed(1)} V, reads ${point.voltage.toFixed(2)} V`);
  if (++n === 3) break;
}

console.log(`heard lab.psu.voltage ${heard.length} times, the last ${heard.at(-1)} V`);

try {
  await psu.set_voltage(99);
} catch (error) {
  // A Python exception arrives as a RemoteError naming its class.
  console.log(`refused: ${error.remoteName}: ${error.message}`);
}
await labc.close();
