import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "@nats-io/transport-node";
import type { BackplaneSettings } from "../config.js";
import { ConfigError } from "../errors.js";

/** How a gateway connects to NATS through nats.js: the servers, the login, TLS, reconnecting. */

/** What is read of nats.js here: it is loaded by a gateway only, and passed in. */
type Authenticators = Pick<typeof import("@nats-io/transport-node"), "credsAuthenticator">;

/** The options of a gateway's NATS connection, named `name` on the server. */
export function connectionOptions(settings: BackplaneSettings, name: string, nats: Authenticators): ConnectionOptions {
  return {
    servers: settings.servers,
    name,
    // What this router publishes is for the other sites.
    noEcho: true,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    ...credentials(settings, nats),
  };
}

function credentials(settings: BackplaneSettings, { credsAuthenticator }: Authenticators): Partial<ConnectionOptions> {
  const out: Partial<ConnectionOptions> = {};
  if (settings.user) Object.assign(out, { user: settings.user, pass: settings.pass });
  if (settings.token) out.token = settings.token;
  if (settings.creds) {
    let creds: Buffer;
    try {
      creds = readFileSync(settings.creds);
    } catch (error) {
      throw new ConfigError(settings.creds, "backplane.creds", `cannot read the NATS credentials file: ${(error as Error).message}`);
    }
    out.authenticator = credsAuthenticator(creds);
  }
  if (settings.tls && Object.values(settings.tls).some(Boolean)) out.tls = settings.tls;
  return out;
}
