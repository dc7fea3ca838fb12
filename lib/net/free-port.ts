import net from "node:net";

/**
 * A port nobody listens on right now, on `host`, nor on the port after it (a root port's invite
 * port), for tests and benchmarks: each gets its own. Taken below Linux's ephemeral range
 * (32768-60999): a port the kernel handed out as free is also one it may give the next outgoing
 * connection of any process as its source port, and a router started on it a moment later then
 * fails to bind (seen as LABC_NO_ROUTER in suites that open thousands of connections at once).
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let tries = 0; tries < 100; tries++) {
    const port = 20000 + Math.floor(Math.random() * 12700);
    if ((await listenable(host, port)) && (await listenable(host, port + 1))) return port;
  }
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen({ host, port: 0 }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function listenable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
