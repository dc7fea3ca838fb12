// raw's echo server (../raw/server.mjs), copied but for the socket: over TLS as labc's secret makes it, the platform's floor
// for a secured call. Usage: node raw-tls/server.mjs [--port 15110] [--exit-after-ms N]
import net from 'node:net';
import tls from 'node:tls';
import { HOST, parseArgs, ready, serverLifecycle } from '../lib/common.mjs';
import { FrameDecoder, encodeFrame } from '../raw/frame.mjs';
import { IDENTITY, PSK, TLS } from './common-tls.mjs';

const args = parseArgs(undefined, { port: 15110 });
const context = tls.createSecureContext(TLS);
// As labc's router and servers do: a plain listener whose sockets are wrapped in TLS.
const server = net.createServer((raw) => {
  raw.setNoDelay(true);
  const sock = new tls.TLSSocket(raw, { isServer: true, secureContext: context, ...TLS, pskCallback: (_s, id) => (id === IDENTITY ? PSK : null) });
  const dec = new FrameDecoder((id, body) => {
    const req = JSON.parse(body.toString('utf8'));
    sock.write(encodeFrame(id, req)); // echo handler: return params
  });
  sock.on('data', (chunk) => {
    sock.cork(); // one write for all replies produced by this chunk
    try { dec.push(chunk); } catch (e) { console.error(e); sock.destroy(); }
    sock.uncork();
  });
  sock.on('error', () => {});
  raw.on('error', () => {});
});
server.listen({ host: HOST, port: args.port }, () => ready('raw-tls', 'server', { port: args.port }));
serverLifecycle(args, () => new Promise((r) => server.close(() => r())));
