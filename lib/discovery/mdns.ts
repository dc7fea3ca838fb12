import { Bonjour, type Browser } from "bonjour-service";
import { debug } from "../log.js";
import { PROTOCOL_VERSION } from "../wire/message.js";
import { interfaceAddresses, type Discovery, type OwnHost, type Sighting } from "./discovery.js";

const TYPE = "labc"; // _labc._tcp

/**
 * mDNS: publishes `_labc._tcp` with the host id, name, root port and protocol version in its TXT
 * record, and browses for the others. It queries again shortly after start, so that a host that
 * announced before this one listened is still found.
 */
export class MdnsDiscovery implements Discovery {
  readonly method = "mdns" as const;
  private readonly instances: Bonjour[] = [];
  private readonly browsers: Browser[] = [];
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly self: OwnHost, private readonly options: { interfaces: readonly string[] }) {}

  start(found: (sighting: Sighting) => void): void {
    // One responder per chosen interface, or one on every interface when none is chosen.
    const chosen = this.options.interfaces.length ? interfaceAddresses(this.options.interfaces) : [undefined];
    for (const entry of chosen) {
      // These options go to multicast-dns (bonjour-service's types do not list them). Bound to
      // 0.0.0.0: a socket bound to the interface's own address would not receive multicast.
      const socketOptions = entry ? { interface: entry.address, bind: "0.0.0.0" } : {};
      const bonjour = new Bonjour(socketOptions as ConstructorParameters<typeof Bonjour>[0], (error: Error) =>
        debug("mdns: %s", error?.message ?? error),
      );
      this.instances.push(bonjour);
      bonjour.publish({
        name: `labc ${this.self.name} ${this.self.hostId}`,
        type: TYPE,
        port: this.self.port,
        probe: false,
        txt: { id: this.self.hostId, name: this.self.name, port: String(this.self.port), v: String(PROTOCOL_VERSION) },
      });
      const browser = bonjour.find({ type: TYPE }, (service) => {
        const txt = (service.txt ?? {}) as Record<string, string>;
        // Our own service comes back too: the router tells it from a clone of this host.
        if (!txt.id || Number(txt.v) !== PROTOCOL_VERSION) return;
        const advertised = (service.addresses ?? []).filter((address) => address.includes("."));
        const first = service.referer?.address;
        found({
          hostId: txt.id,
          name: txt.name,
          addresses: first ? [first, ...advertised.filter((a) => a !== first)] : advertised,
          port: Number(txt.port) || service.port,
          via: "mdns",
        });
      });
      this.browsers.push(browser);
      for (const delay of [300, 1500]) this.timers.push(setTimeout(() => browser.update(), delay).unref());
    }
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    for (const browser of this.browsers) browser.stop();
    for (const bonjour of this.instances) {
      bonjour.unpublishAll();
      bonjour.destroy();
    }
    this.instances.length = 0;
  }
}
