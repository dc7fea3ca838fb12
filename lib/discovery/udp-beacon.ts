import dgram from "node:dgram";
import { debug } from "../log.js";
import type { NetworkKey } from "../trust/network-key.js";
import { AnnouncementCheck, MAX_ADDRESSES, sign, warnIfUnannounceable, type Announcement } from "../trust/signed-announcement.js";
import { PROTOCOL_VERSION } from "../wire/message.js";
import { interfaceAddresses, type Discovery, type OwnHost, type Sighting } from "./discovery.js";

interface Beacon extends Announcement {
  labc: number;
}

/** How far a beacon's signing time may be from the receiver's clock (clocks of a LAN drift). */
const BEACON_MAX_AGE_MS = 5 * 60_000;

/**
 * UDP beacons on the root port: a small JSON datagram broadcast to each interface's broadcast
 * address every interval, and answered at once (unicast) when it comes from a host not heard
 * before, so that two hosts find each other within one round trip of the first beacon.
 */
export class UdpBeacon implements Discovery {
  readonly method = "udp" as const;
  private socket: dgram.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly heard = new Set<string>();
  private readonly check: AnnouncementCheck;

  constructor(
    private readonly self: OwnHost,
    private readonly options: { intervalMs: number; interfaces: readonly string[]; key?: NetworkKey },
  ) {
    this.check = new AnnouncementCheck(options.key, { maxAgeMs: BEACON_MAX_AGE_MS, repeats: false });
  }

  start(found: (sighting: Sighting) => void): void {
    warnIfUnannounceable(this.self, "udp beacons");
    const socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
    this.socket = socket;
    socket.on("error", (error) => debug("udp beacon: %s", error.message));
    socket.on("message", (data, remote) => {
      let beacon: Beacon;
      try {
        beacon = JSON.parse(data.toString());
      } catch {
        return;
      }
      if (beacon?.labc !== PROTOCOL_VERSION || !this.check.accept(beacon, remote.address)) return;
      // With a key, only the addresses the beacon was signed over: the packet's source address
      // is said by whoever sent it, perhaps a stranger replaying a member's beacon.
      const addresses = this.check.dialable(beacon, remote.address);
      // Our own beacon, heard back, is reported too: the router tells it from a clone of this
      // host (docs/reliability.md), and answers neither. Another's is answered at its source only
      // when that may be dialed (it comes first), so a replay sends nothing to a stranger.
      if (beacon.hostId !== this.self.hostId && !this.heard.has(beacon.hostId) && addresses[0] === remote.address) {
        this.heard.add(beacon.hostId);
        this.send(remote.address);
      }
      if (addresses.length === 0) return;
      found({ hostId: beacon.hostId, name: beacon.name, addresses, port: beacon.port, via: "udp" });
    });
    socket.bind(this.self.port, () => {
      socket.setBroadcast(true);
      this.broadcast();
      this.timer = setInterval(() => this.broadcast(), this.options.intervalMs).unref();
    });
    socket.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.socket?.close();
    this.socket = null;
  }

  private beacon(): Buffer {
    const addresses = interfaceAddresses(this.options.interfaces)
      .map((entry) => entry.address)
      .slice(0, MAX_ADDRESSES);
    const beacon: Beacon = { labc: PROTOCOL_VERSION, ...this.self, addresses };
    return Buffer.from(JSON.stringify(sign(beacon, this.options.key)));
  }

  private broadcast(): void {
    for (const { broadcast } of interfaceAddresses(this.options.interfaces)) this.send(broadcast);
  }

  private send(address: string): void {
    this.socket?.send(this.beacon(), this.self.port, address, (error) => {
      if (error) debug("udp beacon to %s: %s", address, error.message);
    });
  }
}
