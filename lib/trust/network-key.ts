import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { parseSecret } from "./secret.js";

/** Each use gets its own key from the secret: a key of one use says nothing of the others. */
export function derive(secret: Buffer, use: string, bytes = 32): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, "labc network", use, bytes));
}

/** What one secret gives. */
class SecretKeys {
  readonly psk: Buffer;
  readonly id: string;
  readonly identity: string;
  readonly httpToken: string;
  readonly announcementKey: Buffer;
  /** What a link between two processes of this host proves instead of TLS (lib/trust/local-proof.ts). */
  readonly localKey: Buffer;

  constructor(readonly secret: Buffer) {
    this.psk = derive(secret, "tls psk");
    this.localKey = derive(secret, "local proof");
    this.announcementKey = derive(secret, "announcement mac");
    this.id = derive(secret, "key id", 8).toString("hex");
    this.identity = `labc1 ${this.id}`;
    this.httpToken = derive(secret, "http token").toString("base64url");
  }

  mac(text: string): string {
    return createHmac("sha256", this.announcementKey).update(text).digest().subarray(0, 16).toString("base64url");
  }
}

/** What a dial offers of one secret: its TLS identity and PSK, or its local-proof key. */
export type OfferedKey = Pick<SecretKeys, "psk" | "identity" | "id" | "localKey">;

/** A rotation this key takes part in: the next secret's keys, and until when the old one still counts. */
interface Rotation {
  next: SecretKeys;
  until: number;
}

/**
 * The keys a network secret gives: the pre-shared key of every TLS link, the key that
 * signs discovery announcements, and a public key id that tells two secrets apart in logs
 * without saying anything about either. The secret itself is never sent.
 *
 * During a rotation (`labc secret rotate`, lib/trust/rotation.ts) it holds two secrets: until
 * the window's end a link may prove either (`pskFor`), a dial offers the next first
 * (`dialOrder`), announcements are signed with the next and taken under either. From the
 * window's end on, only the next one counts: the same object then stands for the new secret.
 */
export class NetworkKey {
  /**
   * Whether links between processes of this host prove the secret on loopback without TLS
   * (lib/trust/local-proof.ts; `network.local_proof`): false keeps TLS on loopback too.
   */
  localProof = true;
  private current: SecretKeys;
  private rotation: Rotation | undefined;
  /** The secret a finished rotation replaced: never taken, only named to a host that still has it. */
  private retired: { keys: SecretKeys; at: number } | undefined;

  constructor(secret: Buffer) {
    this.current = new SecretKeys(secret);
  }

  /** The keys in force now: the rotation is applied once its window ended. */
  private settled(now = Date.now()): SecretKeys {
    const rotation = this.rotation;
    if (rotation && now >= rotation.until) {
      this.retired = { keys: this.current, at: rotation.until };
      this.current = rotation.next;
      this.rotation = undefined;
    }
    return this.current;
  }

  /** The key a link proves by default: the next one during a rotation. */
  private preferred(): SecretKeys {
    const current = this.settled();
    return this.rotation?.next ?? current;
  }

  /** 16 hex digits, the same on every host with this secret (the current one). */
  get id(): string {
    return this.settled().id;
  }

  /** The next secret's key id during a rotation, else undefined. */
  get nextId(): string | undefined {
    this.settled();
    return this.rotation?.next.id;
  }

  /** When the rotation's window ends (ms since the epoch), during one. */
  get rotationEnds(): number | undefined {
    this.settled();
    return this.rotation?.until;
  }

  get psk(): Buffer {
    return this.preferred().psk;
  }

  /** What a TLS client names its key by (sent in the clear; it is the key id). */
  get identity(): string {
    return this.preferred().identity;
  }

  /**
   * What a request to the router's HTTP endpoint must carry, from this computer too (`labc
   * secret http-token`): it opens one router's status page and its bounded actions, not the network.
   */
  get httpToken(): string {
    return this.settled().httpToken;
  }

  /**
   * Whether `keyId` (a refused peer's), or the MAC of an announcement, is the secret a rotation
   * retired: that peer missed the rotation. Says when it was retired, else undefined.
   */
  retiredAt(keyId: string): number | undefined;
  retiredAt(text: string, mac: string): number | undefined;
  retiredAt(keyIdOrText: string, mac?: string): number | undefined {
    this.settled();
    const retired = this.retired;
    if (!retired) return undefined;
    if (mac === undefined) return keyIdOrText === retired.keys.id ? retired.at : undefined;
    const expected = Buffer.from(retired.keys.mac(keyIdOrText));
    const given = Buffer.from(mac);
    return given.length === expected.length && timingSafeEqual(given, expected) ? retired.at : undefined;
  }

  /** The PSK of a client's identity, if it names one of the secrets in force. */
  pskFor(identity: string): Buffer | undefined {
    const current = this.settled();
    if (identity === current.identity) return current.psk;
    if (this.rotation && identity === this.rotation.next.identity) return this.rotation.next.psk;
    return undefined;
  }

  /** The local-proof key of a key id (16 hex digits), if it names one of the secrets in force. */
  localKeyFor(keyId: string): Buffer | undefined {
    const current = this.settled();
    if (keyId === current.id) return current.localKey;
    if (this.rotation && keyId === this.rotation.next.id) return this.rotation.next.localKey;
    return undefined;
  }

  /** The keys a dial tries, in order: the next first during a rotation, then the current. */
  dialOrder(): OfferedKey[] {
    const current = this.settled();
    return this.rotation ? [this.rotation.next, current] : [current];
  }

  /** The MAC of an announcement's text (HMAC-SHA256, first 16 bytes, base64url), under the preferred key. */
  mac(text: string): string {
    return this.preferred().mac(text);
  }

  /** Whether `mac` is the MAC of `text` under a key in force, compared in constant time. */
  verify(text: string, mac: string): boolean {
    const current = this.settled();
    const given = Buffer.from(mac);
    return [current, this.rotation?.next].some((keys) => {
      if (!keys) return false;
      const expected = Buffer.from(keys.mac(text));
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
  }

  /**
   * Takes part in a rotation to `next` until `until`: both secrets count until then, only `next`
   * after. A rotation to the secret in force, or one already known, changes nothing.
   */
  rotate(next: string, until: number): void {
    const keys = new SecretKeys(parseSecret(next, "the rotation"));
    const current = this.settled();
    if (keys.id === current.id || keys.id === this.rotation?.next.id) return;
    this.rotation = { next: keys, until };
  }

  /** The secret in force now, as `labc secret new` writes it (for the processes a router starts). */
  secretText(): string {
    return `labc1_${this.settled().secret.toString("base64url")}`;
  }

  /** The secret's bytes in force now (for a rotation's sealed box). */
  secretBytes(): Buffer {
    return this.settled().secret;
  }
}

/** A secret's own key id, whatever rotation the key object of that secret takes part in. */
export function keyIdOf(secret: string): string {
  return derive(parseSecret(secret, "network.secret"), "key id", 8).toString("hex");
}

const made = new Map<string, NetworkKey>();

/** The key of a secret (as `labc secret new` writes it); one object per secret. */
export function networkKey(secret: string): NetworkKey {
  let key = made.get(secret);
  if (!key) made.set(secret, (key = new NetworkKey(parseSecret(secret, "network.secret"))));
  return key;
}
