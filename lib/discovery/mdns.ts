import { Bonjour, type Browser } from "bonjour-service";
import { debug } from "../log.js";
import type { NetworkKey } from "../trust/network-key.js";
import { AnnouncementCheck, sign, type Announcement } from "../trust/signed-announcement.js";
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

  /** mDNS answers repeat the record as published: a repeat is no replay. */
  private readonly check: AnnouncementCheck;

  constructor(private readonly self: OwnHost, private readonly options: { interfaces: readonly string[]; key?: NetworkKey }) {
    this.check = new AnnouncementCheck(options.key, { repeats: true });
  }

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
        txt: this.txt(),
      });
      const browser = bonjour.find({ type: TYPE }, (service) => {
        const txt = (service.txt ?? {}) as Record<string, string>;
        // Our own service comes back too: the router tells it from a clone of this host.
        if (!txt.id || Number(txt.v) !== PROTOCOL_VERSION) return;
        const signed = { hostId: txt.id, name: String(txt.name), port: Number(txt.port), t: txt.t === undefined ? undefined : Number(txt.t), mac: txt.mac };
        if (!this.check.accept(signed, service.referer?.address ?? "?")) return;
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

  /** The TXT record: who this host is, signed under the network key when there is one. */
  private txt(): Record<string, string> {
    const { hostId, name, port } = this.self;
    const signed = sign<Announcement>({ hostId, name, port }, this.options.key);
    const txt: Record<string, string> = { id: hostId, name, port: String(port), v: String(PROTOCOL_VERSION) };
    if (signed.mac !== undefined) Object.assign(txt, { t: String(signed.t), mac: signed.mac });
    return txt;
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
