import { Bonjour, type Browser, type Service } from "bonjour-service";
import { debug } from "../log.js";
import type { NetworkKey } from "../trust/network-key.js";
import { AnnouncementCheck, sign, warnIfUnannounceable, type Announcement } from "../trust/signed-announcement.js";
import { PROTOCOL_VERSION } from "../wire/message.js";
import { interfaceAddresses, type Discovery, type OwnHost, type Sighting } from "./discovery.js";

const TYPE = "labc"; // _labc._tcp

/**
 * With a network key, a record is taken only if signed within this much of the receiver's clock,
 * and the publisher signs its record again every RESIGN_EVERY_MS. A browser hears a record when
 * it asks (at start) or when the publisher announces it; either way the responder holds a record
 * at most RESIGN_EVERY_MS old, which leaves 6 minutes for clocks apart (beacons allow 5). The
 * window bounds how long a recorded record, played again, can point a router at an address its
 * host has since given up. Each new signature costs a goodbye and a few announcements, which
 * bounds how often to sign.
 */
const SIGNED_WITHIN_MS = 10 * 60_000;
const RESIGN_EVERY_MS = 4 * 60_000;
/** As many dotted quads as fit in one TXT string (255 bytes, `addrs=` included). */
const TXT_MAX_ADDRESSES = 15;

/**
 * mDNS: publishes `_labc._tcp` with the host id, name, root port, protocol version and addresses
 * in its TXT record, and browses for the others. It queries again shortly after start, so that
 * a host that announced before this one listened is still found.
 */
export class MdnsDiscovery implements Discovery {
  readonly method = "mdns" as const;
  private readonly instances: Bonjour[] = [];
  private services: Service[] = [];
  private readonly browsers: Browser[] = [];
  private readonly timers: NodeJS.Timeout[] = [];

  /** mDNS answers repeat the record as published: a repeat is no replay. */
  private readonly check: AnnouncementCheck;

  constructor(
    private readonly self: OwnHost,
    private readonly options: { interfaces: readonly string[]; key?: NetworkKey; /** Tests sign more often. */ resignEveryMs?: number },
  ) {
    this.check = new AnnouncementCheck(options.key, { repeats: true, maxAgeMs: options.key ? SIGNED_WITHIN_MS : undefined });
  }

  start(found: (sighting: Sighting) => void): void {
    warnIfUnannounceable(this.self, "mdns");
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
      const seen = (service: Service) => this.seen(service, found);
      const browser = bonjour.find({ type: TYPE }, seen);
      // A record that changed under a name already known (signed again, a router restarted).
      browser.on("txt-update", seen);
      this.browsers.push(browser);
      for (const delay of [300, 1500]) this.timers.push(setTimeout(() => browser.update(), delay).unref());
    }
    this.publish();
    if (this.options.key) this.timers.push(setInterval(() => this.publish(), this.options.resignEveryMs ?? RESIGN_EVERY_MS).unref());
  }

  private seen(service: Service, found: (sighting: Sighting) => void): void {
    const txt = (service.txt ?? {}) as Record<string, string | undefined>;
    // Our own service comes back too: the router tells it from a clone of this host.
    if (!txt.id || Number(txt.v) !== PROTOCOL_VERSION) return;
    const announcement: Announcement = {
      hostId: txt.id,
      name: txt.name ?? "",
      port: Number(txt.port),
      addresses: txt.addrs ? txt.addrs.split(",") : [],
      t: txt.t === undefined ? undefined : Number(txt.t),
      mac: txt.mac,
    };
    const referer = service.referer?.address;
    if (!this.check.accept(announcement, referer ?? "?")) return;
    // With a key, only the addresses signed in the TXT record; A records are anyone's to send.
    const records = (service.addresses ?? []).filter((address) => address.includes("."));
    const addresses = this.check.dialable(announcement, referer, records);
    if (addresses.length === 0) return;
    found({ hostId: announcement.hostId, name: announcement.name, addresses, port: announcement.port, via: "mdns" });
  }

  /**
   * Publishes this host's record, signed now, on every responder. bonjour-service (1.4) cannot
   * change a published TXT record: the old service says goodbye and a new one is announced,
   * which browsers see as `down` then `up` (or `txt-update` when the goodbye is lost).
   */
  private publish(): void {
    const txt = this.txt();
    for (const service of this.services) service.stop?.();
    this.services = this.instances.map((bonjour) =>
      bonjour.publish({ name: `labc ${this.self.name} ${this.self.hostId}`, type: TYPE, port: this.self.port, probe: false, txt }),
    );
  }

  /** The TXT record: who this host is and where, signed under the network key when there is one. */
  private txt(): Record<string, string> {
    const { hostId, name, port } = this.self;
    const addresses = interfaceAddresses(this.options.interfaces)
      .map((entry) => entry.address)
      .slice(0, TXT_MAX_ADDRESSES);
    const signed = sign<Announcement>({ hostId, name, port, addresses }, this.options.key);
    const txt: Record<string, string> = { id: hostId, name, port: String(port), v: String(PROTOCOL_VERSION), addrs: addresses.join(",") };
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
    this.services = [];
  }
}
