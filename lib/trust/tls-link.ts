import net from "node:net";
import type * as tls from "node:tls";
import { nowMs } from "../clock.js";
import { NotTrustedError } from "../errors.js";
import { errorToPayload } from "../wire/error-payload.js";
import { handshakeTimeout } from "../net/handshake-timeout.js";
import { nodeTls } from "../net/node-tls.js";
import { refused } from "../net/trips.js";
import { encodeMessage } from "../wire/codec.js";
import { Kind } from "../wire/message.js";
import { LOCAL_MAGIC, proveAccepted } from "./local-proof.js";
import type { NetworkKey, OfferedKey } from "./network-key.js";
import { LOCAL_SOCKET } from "./own-address.js";

/**
 * TLS 1.3 with the network's pre-shared key (psk_dhe_ke: an X25519 exchange on every handshake,
 * so a secret learned later does not decrypt what was recorded before). Only SHA-256 suites:
 * OpenSSL offers an externally set PSK under those alone. docs/security.md says why PSK and not
 * certificates.
 *
 * The key must be the only way in: a TLS server that cannot take the PSK may still try to
 * authenticate with an X.509 certificate, and one chaining to a CA that Node trusts (the system's,
 * NODE_EXTRA_CA_CERTS) would otherwise pass. So the only signature scheme either side offers is
 * rsa_pkcs1_sha256, which TLS 1.3 forbids in a handshake's CertificateVerify (RFC 8446, 4.2.3):
 * no certificate can be proven under it, OpenSSL as a server aborts (handshake_failure) and as a
 * client refuses any other scheme (wrong_signature_type), inside the handshake, before the client
 * finishes it. A PSK handshake signs nothing and is unaffected. dialSecure checks again after.
 */
const PROTOCOL = {
  minVersion: "TLSv1.3",
  maxVersion: "TLSv1.3",
  ciphers: "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256",
  sigalgs: "rsa_pkcs1_sha256",
} as const;

/** The first byte of a TLS record carrying a handshake (a ClientHello). */
const TLS_HANDSHAKE = 0x16;

const contexts = new WeakMap<NetworkKey, tls.SecureContext>();
function contextOf(key: NetworkKey): tls.SecureContext {
  let context = contexts.get(key);
  if (!context) contexts.set(key, (context = nodeTls().createSecureContext(PROTOCOL)));
  return context;
}

function addressOf(socket: net.Socket): string {
  return (socket.remoteAddress ?? "?").replace(/^::ffff:/, "");
}

/**
 * Secures a connection this process accepted: resolves with the TLS socket once the peer proved
 * it holds the network secret (or with the plain socket, when a process of this host proved it on
 * loopback: lib/trust/local-proof.ts), or resolves null (the socket destroyed, the refusal
 * logged) when it did not, or did not finish within `timeoutMs`.
 */
export function secureAccepted(
  raw: net.Socket,
  key: NetworkKey,
  timeoutMs: number,
  /** This host's Unix socket `raw` was accepted on, its name and port (lib/net/local-sockets.ts); undefined for TCP. */
  onSocket?: { name: string; port: number },
): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const from = onSocket === undefined ? addressOf(raw) : LOCAL_SOCKET;
    const refuse = (why: string, answered = false) => {
      refused(from, why);
      // An answer, when there is one, leaves first; a peer that does not read it is cut.
      if (answered) setTimeout(() => raw.destroy(), 1000).unref();
      else raw.destroy();
      resolve(null);
    };
    // A serving script that kept its event loop busy past the deadline has read nothing yet: its
    // wait starts again once (no more: a stranger who sends nothing must not gain from it).
    const acceptedAt = nowMs();
    const cancel = handshakeTimeout(timeoutMs, () => refuse(`no TLS handshake or local proof within ${Math.round(nowMs() - acceptedAt)} ms (limits.hello_timeout ${timeoutMs} ms)`), 1);
    raw.once("error", () => {});
    // Closed before a word (a port probe): nothing to refuse.
    raw.once("close", () => {
      cancel();
      resolve(null);
    });
    raw.once("data", (first: Buffer) => {
      raw.pause();
      if (first[0] === LOCAL_MAGIC[0]) {
        // Closed without a word, the dialer takes it for a labc without the proof and dials TLS.
        if (!key.localProof) return cancel(), refuse("it offered the local proof, and this host takes TLS only (network.local_proof = false)");
        void proveAccepted(raw, first, key, (keyId) => unknownKey(key, keyId), onSocket?.name).then(
          (refusal) => {
            cancel();
            if (refusal) return refuse(refusal.why, refusal.answered);
            if (!raw.destroyed) resolve(raw);
          },
          (error: Error) => (cancel(), refuse(`the local proof failed (${error.message})`)),
        );
        return;
      }
      if (first[0] !== TLS_HANDSHAKE) {
        cancel();
        return refuse("it speaks labc without TLS: it has no network secret", answerPlainPeer(raw, first, onSocket ? `127.0.0.1:${onSocket.port}` : `${raw.localAddress?.replace(/^::ffff:/, "")}:${raw.localPort}`));
      }
      raw.unshift(first);
      let unknownKeyId: string | undefined;
      // Set when this handshake took our key: the only way a link opens (see "secure" below).
      let tookKey = false;
      // Node takes `pskCallback` on a server-side TLSSocket; its types list it for servers only.
      const options: tls.TLSSocketOptions & Pick<tls.TlsOptions, "pskCallback"> = {
        isServer: true,
        secureContext: contextOf(key),
        ...PROTOCOL,
        pskCallback: (_socket, identity) => {
          // The current secret, or during a rotation the next one too (network-key.ts).
          const psk = key.pskFor(identity);
          if (psk) {
            tookKey = true;
            return psk;
          }
          // The handshake fails without a key, and the peer is told so by a TLS alert.
          unknownKeyId = identity.replace(/^labc1 /, "");
          return null;
        },
      };
      const socket = new (nodeTls().TLSSocket)(raw, options);
      socket.once("secure", () => {
        cancel();
        // What keeps a client without the key out is the handshake itself: this side has no
        // certificate (so it cannot authenticate any other way; TLS 1.3 has no anonymous suites),
        // never asks for a client certificate (one sent unasked is a protocol error), and a
        // client without our identity gets no key from pskCallback: OpenSSL then fails with
        // "no suitable signature algorithm". One door stays: a session ticket, which OpenSSL
        // sends after each handshake and takes back without asking pskCallback. A ticket is
        // only had from a handshake with the key, but our own clients never offer one, so a
        // link must have taken the key in this very handshake, and presented no certificate.
        if (!tookKey || peerCertified(socket)) {
          socket.destroy();
          return refuse("it completed a TLS handshake without our network key (a resumed session, or a certificate): each link must prove the key afresh");
        }
        socket.removeAllListeners("error");
        resolve(socket);
      });
      socket.once("error", (error) => {
        cancel();
        refuse(
          unknownKeyId === undefined
            ? `TLS handshake failed (${(error as NodeJS.ErrnoException).code ?? error.message})`
            : unknownKey(key, unknownKeyId),
        );
      });
    });
  });
}

/** Why a peer that named a key id not ours is refused. */
function unknownKey(key: NetworkKey, keyId: string): string {
  return missedRotation(key, keyId) ?? `it has another network secret (key id ${keyId}; ours is ${key.id})`;
}

/** Why a peer with the secret a rotation retired is refused, and how it catches up; else undefined. */
export function missedRotation(key: NetworkKey, keyId: string, at = key.retiredAt(keyId)): string | undefined {
  if (at === undefined) return undefined;
  return (
    `it has the network's previous secret (key id ${keyId}, replaced by ${key.id} at ${new Date(at).toISOString()}): it missed the rotation; ` +
    "run `labc invite` on a member and `labc join --force` on that host"
  );
}

/**
 * A labc peer without the secret sent its first frame in the clear. When that frame is a request
 * (a hello with an id), it gets a plain answer saying why it is refused: a host that forgot the
 * secret learns it from its first call instead of a lost connection.
 */
function answerPlainPeer(raw: net.Socket, first: Buffer, where: string): boolean {
  if (first.length < 12 || first[4] !== Kind.hello) return false;
  const id = first.readUInt32BE(8);
  if (id === 0) return false;
  const error = new NotTrustedError(
    where,
    "this host requires the network secret: set the same secret on this host (`labc secret show` on a host that has it)",
  );
  raw.end(Buffer.concat([encodeMessage(Kind.exc, id, errorToPayload(error, false))].flat()));
  return true;
}

const CERTIFICATE = "presented a certificate instead of the network key: it does not hold the secret";

/**
 * How Node and OpenSSL name a server's certificate that failed: an X.509 verification code
 * (UNABLE_TO_VERIFY_LEAF_SIGNATURE, DEPTH_ZERO_SELF_SIGNED_CERT, CERT_HAS_EXPIRED, ...), or a
 * handshake signed under a scheme we did not offer (ERR_SSL_WRONG_SIGNATURE_TYPE).
 */
const X509_FAILURE = /^(?!ERR_SSL_).*(CERT|ISSUER|LEAF_SIGNATURE|CRL|INVALID_CA|PATH_LENGTH|INVALID_PURPOSE)|WRONG_SIGNATURE_TYPE|ERR_LABC_CERTIFICATE/;

/** Whether the peer of `socket` presented a certificate (a PSK handshake has none). */
function peerCertified(socket: tls.TLSSocket): boolean {
  const certificate = socket.getPeerCertificate();
  return certificate !== null && Object.keys(certificate).length > 0;
}

/**
 * Dials a peer and proves the network secret to it (it proves it back: the handshake fails
 * otherwise). Failures of the handshake reject with NotTrustedError; failures to connect at all
 * reject with the socket's own error, as a plain dial does.
 */
export function dialSecure(host: string, port: number, key: NetworkKey, timeoutMs: number, onread?: net.OnReadOpts): Promise<tls.TLSSocket> {
  return inKeyOrder(key, (offered) => dialWith(host, port, key, offered, timeoutMs, onread));
}

/**
 * Proves the keys of a dial in turn: during a rotation the next secret goes first; a peer that
 * has not learned it yet refuses it, and the current one is offered on a new connection.
 */
export async function inKeyOrder<T>(key: NetworkKey, attempt: (offered: OfferedKey) => Promise<T>): Promise<T> {
  const [first, ...rest] = key.dialOrder();
  try {
    return await attempt(first!);
  } catch (error) {
    if (rest.length === 0 || !(error instanceof NotTrustedError) || !REFUSED_KEY.test(error.message)) throw error;
    return attempt(rest[0]!);
  }
}

/** A refusal of the key offered, as a server that does not hold it answers. */
export function refusedKey(key: NetworkKey, where: string, offered: OfferedKey, cause?: unknown): NotTrustedError {
  return new NotTrustedError(where, `refused our network secret (key id ${offered.id}): it has another one${key.nextId ? "" : ` (${CATCH_UP})`}`, cause);
}

/** How a refusal of our key reads (a peer with another secret, or without the next one yet). */
const REFUSED_KEY = /refused our network secret/;

/** What a refused key means, and what to do when this host missed a rotation. */
const CATCH_UP =
  "if one of the two hosts missed a rotation of the secret (`labc secret status` on a member tells), " +
  "bring it back with `labc invite` on a member and `labc join --force` on it";

function dialWith(
  host: string,
  port: number,
  key: NetworkKey,
  offered: OfferedKey,
  timeoutMs: number,
  onread?: net.OnReadOpts,
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const where = `${host}:${port}`;
    let connected = false;
    // Whether the server offered a certificate instead of the key (it does not hold it then).
    let certified = false;
    const socket = nodeTls().connect({
      host,
      port,
      ...PROTOCOL,
      secureContext: contextOf(key),
      pskCallback: () => ({ psk: offered.psk, identity: offered.identity }),
      // The PSK authenticates the server, and nothing else may. Node asks this only of a server
      // that authenticated with a certificate chaining to a CA it trusts (a PSK handshake counts
      // as resumed and skips it), and `rejectUnauthorized` then ends the connection before a
      // byte of ours is sent; a certificate it does not trust ends it the same way.
      checkServerIdentity: () => {
        certified = true;
        return Object.assign(new Error(CERTIFICATE), { code: "ERR_LABC_CERTIFICATE" });
      },
      rejectUnauthorized: true,
      // Node reads into `onread` for TLS as for plain sockets; its types leave the option out.
      ...({ onread } as object),
    });
    const cancel = handshakeTimeout(timeoutMs, () => {
      socket.destroy();
      reject(Object.assign(new Error(`connect to ${where} timed out`), { code: "ETIMEDOUT" }));
    });
    socket.once("connect", () => (connected = true));
    socket.once("secureConnect", () => {
      cancel();
      // Checked again rather than trusted to the two guards above: in TLS 1.3 a handshake with
      // an external PSK is one that "resumed", and it carries no certificate. This process never
      // offers a session ticket, so nothing else resumes.
      if (!socket.isSessionReused() || peerCertified(socket)) {
        socket.destroy();
        return reject(new NotTrustedError(where, CERTIFICATE));
      }
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      cancel();
      socket.destroy();
      if (!connected) return reject(error);
      const code = error.code ?? "";
      if (!certified && !X509_FAILURE.test(code) && /ALERT|DECRYPT|BAD_RECORD_MAC/.test(code)) return reject(refusedKey(key, where, offered, error));
      const why = certified || X509_FAILURE.test(code)
        ? CERTIFICATE
        : /WRONG_VERSION|PACKET_LENGTH|RECORD_LAYER/.test(code)
          ? "answered without TLS: it has no network secret, and this process has one"
          : "closed the connection during the TLS handshake: it has no network secret, or another one";
      reject(new NotTrustedError(where, why, error));
    });
  });
}
