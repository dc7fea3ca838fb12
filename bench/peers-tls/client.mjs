// raw's RPC client (../raw/client.mjs), copied line for line but for the socket, so that the two differ
// by TLS alone (made as labc's secret makes it).
// Usage as raw's: node raw-tls/client.mjs --workload w1|w2|w4 [--port 15110] [--calls N] ...
import tls from 'node:tls';
import { HOST, parseArgs } from '../lib/common.mjs';
import { RPC_DEFAULTS, runRpc } from '../lib/rpc-driver.mjs';
import { FrameDecoder, encodeFrame, corkingWriter } from '../raw/frame.mjs';
import { IDENTITY, PSK, TLS } from './common-tls.mjs';

const args = parseArgs(undefined, { ...RPC_DEFAULTS, port: 15110 });
const sock = tls.connect({ host: HOST, port: args.port, ...TLS, pskCallback: () => ({ psk: PSK, identity: IDENTITY }), checkServerIdentity: () => undefined });
sock.setNoDelay(true);
await new Promise((res, rej) => { sock.once('secureConnect', res); sock.once('error', rej); });

const pending = new Map();
let nextId = 1;
const dec = new FrameDecoder((id, body) => {
  const cb = pending.get(id);
  if (!cb) return;
  pending.delete(id);
  cb(JSON.parse(body.toString('utf8')));
});
sock.on('data', (c) => dec.push(c));
const write = corkingWriter(sock);

const call = (obj) => new Promise((resolve) => {
  const id = nextId; nextId = (nextId + 1) >>> 0 || 1;
  pending.set(id, resolve);
  write(encodeFrame(id, obj));
});

await runRpc('raw-tls', call, args);
sock.end();
process.exit(0);
