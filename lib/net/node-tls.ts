import { createRequire } from "node:module";
import type * as Tls from "node:tls";

let loaded: typeof Tls | undefined;

/**
 * node:tls, loaded when a link first needs it (the network secret, a NATS server over TLS).
 * Loading it costs every process that never does, such as each `labc call` without a secret,
 * about half a millisecond of its start (issue 31).
 */
export function nodeTls(): typeof Tls {
  return (loaded ??= createRequire(import.meta.url)("node:tls") as typeof Tls);
}
