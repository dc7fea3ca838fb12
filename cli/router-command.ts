import { join } from "node:path";
import { spawn } from "node:child_process";
import { backplaneSettings, configDir, keyOf, loadConfig, localSocketsOf, stateDir, type Config } from "../lib/config.js";
import type { Discovery } from "../lib/discovery/discovery.js";
import { KnownHosts } from "../lib/discovery/known-hosts.js";
import { StaticPeers } from "../lib/discovery/static-peers.js";
import { UdpBeacon } from "../lib/discovery/udp-beacon.js";
import { hostId, newId } from "../lib/identity.js";
import { listenTcp, type ListenOptions } from "../lib/net/listen-tcp.js";
import { connectTcp } from "../lib/net/connect-tcp.js";
import type { NetworkKey } from "../lib/trust/network-key.js";
import { OPEN_NETWORK } from "../lib/trust/secret.js";
import type { Listener, Transport } from "../lib/net/transport.js";
import { CLI_PATH } from "../lib/paths.js";
import { Router } from "../lib/router/router.js";
import { HttpEndpoint } from "../lib/router/http-endpoint.js";
import { InviteDesk } from "./invite-desk.js";
import { RotationDuty } from "./rotation-duty.js";
import { StatusBoard } from "./status-board.js";
import { warn } from "../lib/log.js";
import { Runtime } from "../lib/runtime/runtime.js";
import { servicesDir } from "../lib/services/manifest.js";
import { isPythonService, pythonCommand, spawnPythonService } from "../lib/services/python-service.js";
import { Supervisor } from "../lib/services/supervisor.js";
import { Core } from "../services/core.js";
import { ServiceControl } from "../services/service-control.js";
import { limitsFrom } from "../lib/config.js";
import { stopOnSignal } from "./stop-on-signal.js";

/** The root port on every address the router must answer on: its own host's, and the network's. */
async function listenAll(
  addresses: string[],
  port: number,
  onTransport: (transport: Transport) => void,
  options: ListenOptions,
): Promise<Listener> {
  const unique = addresses.includes("0.0.0.0") ? ["0.0.0.0"] : [...new Set(addresses)];
  const listeners: Listener[] = [];
  try {
    for (const address of unique) listeners.push(await listenTcp(address, port, onTransport, options));
  } catch (error) {
    await Promise.all(listeners.map((listener) => listener.close()));
    throw error;
  }
  return {
    port: listeners[0]!.port,
    refuse: () => listeners.forEach((l) => l.refuse()),
    close: async () => void (await Promise.all(listeners.map((l) => l.close()))),
  };
}

/** The discovery methods the config asks for. */
async function discoveriesFor(
  config: Config,
  self: { hostId: string; name: string; port: number },
  known: KnownHosts,
  key: NetworkKey | undefined,
): Promise<Discovery[]> {
  const methods: Discovery[] = [];
  const interfaces = config["discovery.interfaces"];
  if (config["discovery.enabled"]) {
    methods.push(known);
    if (config["discovery.mdns"]) {
      // Loaded only when used: a router with mDNS off does not carry it.
      const { MdnsDiscovery } = await import("../lib/discovery/mdns.js");
      methods.push(new MdnsDiscovery(self, { interfaces, key }));
    }
    if (config["discovery.udp"]) {
      methods.push(new UdpBeacon(self, { intervalMs: config["discovery.beacon_interval"] * 1000, interfaces, key }));
    }
  }
  if (config["discovery.peers"].length) {
    methods.push(new StaticPeers(config["discovery.peers"], { defaultPort: config["router.port"], intervalMs: 2000 }));
  }
  return methods;
}

/** `labc router`: the host's router, in this process, until signalled or idle. */
export async function runRouter(config: Config): Promise<void> {
  // What `ps` shows: the router is easy to find (and to tell from a service).
  process.title = "labc router";
  const port = config["router.port"];
  const self = { hostId: config["host.id"] || hostId(config["host.name"]), name: config["host.name"], port };
  const known = new KnownHosts(join(configDir(), "known-hosts.json"));
  const limits = limitsFrom(config);
  const key = keyOf(config);
  // ServiceControl: a labc server inside the router process, registered with it like any other.
  const control = new Runtime(config);
  // The secret in force for the services it starts: after a rotation's window, the new one.
  const secretInForce = () => (key ? key.secretText() : config["network.secret"]);
  const supervisor = new Supervisor({
    servicesDir: servicesDir(),
    stateDir: stateDir(),
    settings: (name) => loadConfig().services[name],
    // A service stopping drains its calls first (server.drain_timeout): SIGKILL comes after.
    stopTimeoutMs: config["server.drain_timeout"] * 1000 + 5000,
    spawn: (name, entry, state) =>
      isPythonService(entry)
        ? spawnPythonService(name, entry, {
            python: pythonCommand(config["service_control.python"]),
            state,
            routerPort: port,
            env: { ...process.env, LABC_NETWORK_SECRET: secretInForce() },
          })
        : spawn(process.execPath, [CLI_PATH, "serve", entry, "--as", name], {
            // Its own process group: a Ctrl-C meant for a router in a terminal does not reach it.
            detached: true,
            stdio: ["ignore", "pipe", "pipe"],
            // The router's own secret, which the service must hold to link with it: by environment,
            // never by argument (every user of the computer reads arguments in `ps`).
            // Its router is this one, on whichever port it was given (`--port` is not in the environment).
            env: { ...process.env, LABC_NETWORK_SECRET: secretInForce(), LABC_ROUTER_PORT: String(port) },
          }),
  });
  const router = new Router({
    host: self.name,
    hostId: self.hostId,
    port,
    instance: newId(),
    limits,
    lingerSeconds: config["router.linger"],
    forwardTimeoutMs: config["call.timeout"] * 1000,
    heartbeat: {
      intervalMs: config["network.heartbeat"] * 1000,
      suspectAfter: config["network.suspect_after"],
      deadAfter: config["network.dead_after"],
    },
    listen: (onTransport) =>
      listenAll([config["network.listen"], config["router.address"]], port, onTransport, {
        maxPerAddress: limits.maxConnectionsPerAddress,
        key,
        handshakeTimeoutMs: limits.helloTimeoutMs,
        local: localSocketsOf(config),
      }),
    dial: (address, peerPort) => connectTcp(address, peerPort, 1000, key),
    discoveries: await discoveriesFor(config, self, known, key),
    // mDNS asks again 1.5 s after start; a beacon is answered within a round trip.
    settleMs: 2000,
    remember: (...host) => known.remember(...host),
    // A service waiting to be restarted keeps the router: it would not be restarted otherwise.
    canLeave: () => !supervisor.busy(),
    onIdle: () => void control.close().then(() => router.close()).then(() => process.exit(0)),
    backplane: backplaneSettings(config, key !== undefined),
  });
  try {
    await router.start();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new Error(`port ${port} is taken: a router (or something else) already runs there`);
    }
    throw error;
  }
  const discovery = config["discovery.enabled"] ? "on" : "off";
  // Other hosts of the LAN proved the secret; other sites only a NATS login: them only if asked.
  const remoteControl = key !== undefined || config["service_control.remote"];
  await control.serve(new ServiceControl(supervisor, { host: self.name, remote: remoteControl, otherSites: config["service_control.remote"] }));
  // Only under their full names: a user's own `ping` must not meet every router's.
  const core = new Core({ host: self.name, hostId: self.hostId }, config["router.linger"]);
  await control.register(() => core.ping(), { name: "core.ping" });
  await control.register(() => core.info(), { name: "core.info" });
  // Rotating the network secret without a gap (labc secret rotate, labc secret status).
  const rotation = new RotationDuty(control, key, self, configDir());
  await control.register((box: unknown) => rotation.rotate(box), { name: "core.rotate" });
  await control.register(() => rotation.keys(), { name: "core.keys" });
  rotation.start();
  // The endpoint is an extra: a router that cannot open it says why and works on without it.
  // "Invite a host" on the status page: as `labc invite` would, from this computer only.
  const invites = new InviteDesk({
    rootPort: port,
    secret: config["network.secret"] || undefined,
    self: { name: self.name, hostId: self.hostId },
    answerAsks: config["discovery.enabled"],
    stateFolder: stateDir(),
  });
  const board = config["http.enabled"]
    ? new StatusBoard(control, { host: self.name, networkMetrics: () => router.info.networkMetrics(), invite: (body, far) => invites.act(body, far) })
    : undefined;
  const http = board
    ? new HttpEndpoint({
        address: config["http.address"],
        port: config["http.port"],
        host: self.name,
        metrics: (far) => router.info.metrics(far),
        pages: board,
        ...(key ? { token: key.httpToken } : {}),
      })
    : undefined;
  const httpPort = await http?.start().catch((error: Error) => {
    warn(`labc router: no HTTP endpoint: ${error.message}`);
    return undefined;
  });
  router.markReady();
  stopOnSignal(async () => {
    rotation.stop();
    invites.close();
    board?.close();
    await http?.close();
    await control.close();
    await router.close();
  });
  process.stdout.write(
    `labc router: ${self.name} (${self.hostId}) on port ${router.port}, pid ${process.pid}, discovery ${discovery}` +
      `, ${key ? `network secret (key id ${key.id})` : "open network"}` +
      `${httpPort ? `, status page http://${config["http.address"]}:${httpPort}/ (metrics at /metrics${key ? "; with the token of `labc secret http-token`, this computer too" : ""})` : ""}\n${key ? "" : `${OPEN_NETWORK}\n`}`,
  );
}
