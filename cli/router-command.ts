import type { Config } from "../lib/config.js";
import { hostId } from "../lib/identity.js";
import { listenTcp } from "../lib/net/tcp-transport.js";
import { Router } from "../lib/router.js";
import { DEFAULT_LIMITS } from "../lib/wire/limits.js";
import { stopOnSignal } from "./stop-on-signal.js";

/** `labc router`: the host's router, in this process, until signalled or idle. */
export async function runRouter(config: Config): Promise<void> {
  // What `ps` shows: the router is easy to find (and to tell from a service).
  process.title = "labc router";
  const address = config["router.address"];
  const port = config["router.port"];
  const router = new Router({
    host: config["host.name"],
    hostId: hostId(),
    limits: { ...DEFAULT_LIMITS, maxFrameBytes: config["wire.max_frame_size"] },
    lingerSeconds: config["router.linger"],
    listen: (onTransport) => listenTcp(address, port, onTransport),
    onIdle: () => process.exit(0),
  });
  try {
    await router.start();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new Error(`port ${port} on ${address} is taken: a router (or something else) already runs there`);
    }
    throw error;
  }
  process.stdout.write(`labc router: listening on ${address}:${router.port} (pid ${process.pid})\n`);
  stopOnSignal(() => router.close());
}
