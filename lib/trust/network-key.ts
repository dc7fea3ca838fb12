import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { parseSecret } from "./secret.js";

/** Each use gets its own key from the secret: a key of one use says nothing of the others. */
function derive(secret: Buffer, use: string, bytes = 32): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, "labc network", use, bytes));
}

/**
 * The keys a network secret gives: the pre-shared key of every TLS link, the key that
 * signs discovery announcements, and a public key id that tells two secrets apart in logs
 * without saying anything about either. The secret itself is never sent.
 */
export class NetworkKey {
  readonly psk: Buffer;
  /** 16 hex digits, the same on every host with this secret. */
  readonly id: string;
  /** What a TLS client names its key by (sent in the clear; it is the key id). */
  readonly identity: string;
  /**
   * What a request to the router's HTTP endpoint must carry, from this computer too (`labc
   * secret http-token`): it opens one router's status page and its bounded actions, not the network.
   */
  readonly httpToken: string;
  private readonly announcementKey: Buffer;

  constructor(secret: Buffer) {
    this.psk = derive(secret, "tls psk");
    this.announcementKey = derive(secret, "announcement mac");
    this.id = derive(secret, "key id", 8).toString("hex");
    this.identity = `labc1 ${this.id}`;
    this.httpToken = derive(secret, "http token").toString("base64url");
  }

  /** The MAC of an announcement's text (HMAC-SHA256, first 16 bytes, base64url). */
  mac(text: string): string {
    return createHmac("sha256", this.announcementKey).update(text).digest().subarray(0, 16).toString("base64url");
  }

  /** Whether `mac` is the MAC of `text`, compared in constant time. */
  verify(text: string, mac: string): boolean {
    const expected = Buffer.from(this.mac(text));
    const given = Buffer.from(mac);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

const made = new Map<string, NetworkKey>();

/** The key of a secret (as `labc secret new` writes it); one object per secret. */
export function networkKey(secret: string): NetworkKey {
  let key = made.get(secret);
  if (!key) made.set(secret, (key = new NetworkKey(parseSecret(secret, "network.secret"))));
  return key;
}
