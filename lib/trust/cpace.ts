import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { ristretto255, ristretto255_hasher } from "@noble/curves/ed25519.js";

/**
 * CPace, the balanced PAKE of draft-irtf-cfrg-cpace (version 13 onwards), with the cipher suite
 * CPACE-RISTR255-SHA512: the group is ristretto255 (RFC 9496, from @noble/curves: no curve
 * arithmetic of our own), the hash SHA-512. Both sides derive a generator from the password, so
 * a party that does not know the password learns nothing from the exchange that would let it test
 * a guess offline: each run tests one guess, online. Names follow the draft (PRS, CI, sid, AD,
 * Ya/Yb, K, ISK); test/unit/cpace.test.ts checks this file against the draft's test vectors.
 *
 * The initiator (A) and the responder (B) each send one group element; `transcript_ir` (the
 * initiator-responder order) goes into ISK. Key confirmation is the draft's section
 * "Key confirmation": mac_key = SHA-512("CPaceMac" || sid || ISK), each side's tag an
 * HMAC-SHA512 over lv_cat(its Y, its AD).
 */

export const DSI = Buffer.from("CPaceRistretto255");
/** SHA-512's input block: the generator string pads PRS to fill the first block. */
const S_IN_BYTES = 128;
const Point = ristretto255.Point;
/** The order of ristretto255: scalars are taken modulo it. */
const ORDER = Point.Fn.ORDER;

/** The LEB128 length of `data` followed by `data` (the draft's prepend_len). */
export function prependLen(data: Uint8Array): Buffer {
  const length: number[] = [];
  let n = data.length;
  do {
    length.push((n & 0x7f) | (n >= 128 ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.from(length), data]);
}

/** Each argument with its length before it (the draft's lv_cat): no two lists read the same. */
export function lvCat(...parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts.map(prependLen));
}

/** The draft's generator_string: DSI, PRS, zero padding to the end of the first hash block, CI, sid. */
export function generatorString(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Buffer {
  const zpad = Math.max(0, S_IN_BYTES - 1 - prependLen(prs).length - prependLen(DSI).length);
  return lvCat(DSI, prs, Buffer.alloc(zpad), ci, sid);
}

/** The generator of a run: ristretto255's element derivation (RFC 9496, 4.3.4) of SHA-512(generator string). */
function generatorPoint(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array) {
  const hashed = createHash("sha512").update(generatorString(prs, ci, sid)).digest();
  return ristretto255_hasher.deriveToCurve!(hashed);
}

/** The generator's encoding (for the draft's test vector). */
export function calculateGenerator(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Buffer {
  return Buffer.from(generatorPoint(prs, ci, sid).toBytes());
}

/** A scalar as the draft's sample_scalar makes it: 32 random bytes, read little-endian, reduced. */
export function sampleScalar(): Buffer {
  return randomBytes(32);
}

function scalarOf(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  const reduced = n % ORDER;
  if (reduced === 0n) throw new Error("CPace: a zero scalar");
  return reduced;
}

/**
 * y·X for a received encoding X (the draft's scalar_mult_vfy), or undefined where the draft
 * returns the identity: X does not decode to a group element, or the product is the identity.
 * Either way the run must abort.
 */
export function scalarMultVfy(y: Uint8Array, encoded: Uint8Array): Buffer | undefined {
  let point;
  try {
    point = Point.fromBytes(encoded);
  } catch {
    return undefined;
  }
  const product = point.multiply(scalarOf(y));
  return product.is0() ? undefined : Buffer.from(product.toBytes());
}

/** The transcript of an initiator-responder run (the draft's transcript_ir). */
export function transcriptIr(ya: Uint8Array, adA: Uint8Array, yb: Uint8Array, adB: Uint8Array): Buffer {
  return Buffer.concat([lvCat(ya, adA), lvCat(yb, adB)]);
}

/** ISK = SHA-512(lv_cat(DSI || "_ISK", sid, K) || transcript_ir). */
export function intermediateKey(sid: Uint8Array, k: Uint8Array, transcript: Uint8Array): Buffer {
  const dsiIsk = Buffer.concat([DSI, Buffer.from("_ISK")]);
  return createHash("sha512").update(lvCat(dsiIsk, sid, k)).update(transcript).digest();
}

/** What a finished run gives: the shared key and the two confirmation tags. */
export interface CPaceResult {
  /** ISK: 64 bytes, the same on both sides if and only if both used the same password. */
  isk: Buffer;
  /** The tag this side sends, and the one it expects from the other. */
  ownTag: Buffer;
  expectedTag: Buffer;
}

/** One side of one run. Make a new one per run: its scalar is used once. */
export class CPace {
  /** This side's message: its group element, 32 bytes. */
  readonly y: Buffer;
  private readonly scalar: bigint;

  constructor(
    readonly role: "initiator" | "responder",
    prs: Uint8Array,
    ci: Uint8Array,
    private readonly sid: Uint8Array,
    private readonly ad: Uint8Array,
    /** Fixed only by tests that replay the draft's vectors. */
    scalar: Uint8Array = sampleScalar(),
  ) {
    this.scalar = scalarOf(scalar);
    this.y = Buffer.from(generatorPoint(prs, ci, sid).multiply(this.scalar).toBytes());
  }

  /**
   * Takes the other side's element and associated data: the keys, or undefined when its element
   * is not one of the group or gives the identity (the run is aborted: a broken or hostile peer).
   */
  finish(otherY: Uint8Array, otherAd: Uint8Array): CPaceResult | undefined {
    const scalarBytes = Buffer.alloc(32);
    let n = this.scalar;
    for (let i = 0; i < 32; i++, n >>= 8n) scalarBytes[i] = Number(n & 0xffn);
    const k = scalarMultVfy(scalarBytes, otherY);
    if (!k) return undefined;
    const initiator = this.role === "initiator";
    const transcript = initiator ? transcriptIr(this.y, this.ad, otherY, otherAd) : transcriptIr(otherY, otherAd, this.y, this.ad);
    const isk = intermediateKey(this.sid, k, transcript);
    const macKey = createHash("sha512").update("CPaceMac").update(this.sid).update(isk).digest();
    const tag = (y: Uint8Array, ad: Uint8Array) => createHmac("sha512", macKey).update(lvCat(y, ad)).digest();
    return { isk, ownTag: tag(this.y, this.ad), expectedTag: tag(otherY, otherAd) };
  }
}

/** Whether a received tag is the expected one, compared in constant time. */
export function tagsMatch(expected: Buffer, received: Uint8Array): boolean {
  return received.length === expected.length && timingSafeEqual(expected, received);
}
