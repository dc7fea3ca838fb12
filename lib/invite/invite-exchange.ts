import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { CPace, tagsMatch } from "../trust/cpace.js";
import type { InviteMessage, MessagePipe } from "./invite-channel.js";

/**
 * The exchange of an invite, on one TCP connection (docs/protocol.md#invites):
 *
 *   inviter → joiner  {labc: "invite", v: 1, sid}           a fresh session id (16 random bytes)
 *   joiner → inviter  {nameplate, y: Ya, ad}                CPace's first message; the invite is spent
 *   inviter → joiner  {y: Yb, ad, tag: Tb}                  CPace's second, and the inviter's confirmation
 *   joiner → inviter  {tag: Ta}                             sent only if Tb was right
 *   inviter → joiner  {sealed}                              the network secret, under the PAKE's key
 *   joiner → inviter  {sealed}                              whether the joiner stored it
 *
 * The password is the whole code. Both confirmations come before the secret leaves: a joiner
 * with a wrong code learns only that it was wrong, and an eavesdropper sees two group elements,
 * two MACs and one AES-GCM box, none of which it can test a guess against without solving CDH in
 * ristretto255. A wrong code either way ends the exchange with `{error: "LABC_WRONG_CODE"}`.
 */

/** CPace's channel identifier: names this protocol and its version. */
export const INVITE_CI = Buffer.from("labc invite 1");
/** The AEAD's additional data for each direction's one box. */
const SEALED_SECRET = Buffer.from("labc invite 1 secret");
const SEALED_RECEIPT = Buffer.from("labc invite 1 receipt");

/** Who a side says it is, in CPace's associated data (authenticated by the key confirmation). */
export interface InviteParty {
  name: string;
  hostId: string;
}

/** What travels sealed from the inviter. */
export interface InvitePayload {
  secret: string;
}

/** How an exchange ended, on either side. */
export type ExchangeOutcome =
  | { kind: "joined"; peer: InviteParty }
  | { kind: "wrong-code" }
  | { kind: "not-stored"; peer: InviteParty; reason: string }
  | { kind: "other-invite"; nameplate: string }
  | { kind: "broken"; reason: string };

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");

function bytesOf(message: InviteMessage, field: string, length?: number): Buffer | undefined {
  const value = message[field];
  if (typeof value !== "string" || !/^[A-Za-z0-9_-]{0,2000}$/.test(value)) return undefined;
  const bytes = Buffer.from(value, "base64url");
  return length === undefined || bytes.length === length ? bytes : undefined;
}

function partyOf(ad: unknown): InviteParty | undefined {
  if (typeof ad !== "string" || ad.length > 600) return undefined;
  try {
    const party = JSON.parse(ad) as Partial<InviteParty>;
    if (typeof party.name === "string" && typeof party.hostId === "string") return { name: party.name.slice(0, 255), hostId: party.hostId.slice(0, 255) };
  } catch {
    // not ours
  }
  return undefined;
}

const adOf = (party: InviteParty) => JSON.stringify({ name: party.name, hostId: party.hostId });

/** The AEAD key of a run: HKDF-SHA256 of CPace's ISK, salted with the session id. */
function sealKey(isk: Buffer, sid: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", isk, sid, "labc invite 1 seal", 32));
}

/** AES-256-GCM; each direction's single box under its own nonce (1: the secret, 2: the receipt). */
function seal(key: Buffer, nonce: number, aad: Buffer, plain: object): string {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(nonce, 8);
  const cipher = createCipheriv("aes-256-gcm", key, iv).setAAD(aad);
  const body = Buffer.concat([cipher.update(JSON.stringify(plain)), cipher.final()]);
  return b64(Buffer.concat([body, cipher.getAuthTag()]));
}

function open(key: Buffer, nonce: number, aad: Buffer, box: Buffer | undefined): Record<string, unknown> | undefined {
  if (!box || box.length < 16) return undefined;
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(nonce, 8);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv).setAAD(aad).setAuthTag(box.subarray(-16));
    const plain = Buffer.concat([decipher.update(box.subarray(0, -16)), decipher.final()]);
    const value = JSON.parse(plain.toString("utf8"));
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

const WRONG_CODE = { error: "LABC_WRONG_CODE", message: "the code does not match the invite's: the invite is spent; make a new one with `labc invite`" };

/**
 * The inviting side, on a connection it accepted. `spend` is called once the joiner sent its
 * first CPace message for this invite's number: from then on the invite is used, whatever
 * follows. It answers false when another exchange spent it first.
 */
export async function offerSecret(
  channel: MessagePipe,
  invite: { code: string; nameplate: string },
  self: InviteParty,
  payload: InvitePayload,
  spend: () => boolean,
): Promise<ExchangeOutcome> {
  const sid = randomBytes(16);
  channel.send({ labc: "invite", v: 1, sid: b64(sid) });
  const first = await channel.receive();
  if (first.nameplate !== invite.nameplate) {
    const asked = typeof first.nameplate === "string" ? first.nameplate.slice(0, 8) : "?";
    channel.end({ error: "LABC_NO_INVITE", message: `this host has no open invite ${asked}` });
    return { kind: "other-invite", nameplate: asked };
  }
  if (!spend()) {
    channel.end({ error: "LABC_NO_INVITE", message: `invite ${invite.nameplate} is being used by another host` });
    return { kind: "other-invite", nameplate: invite.nameplate };
  }
  const ya = bytesOf(first, "y", 32);
  const joiner = partyOf(first.ad);
  if (!ya || !joiner) {
    channel.end({ error: "LABC_BAD_MESSAGE", message: "a first message without a group element or a host" });
    return { kind: "broken", reason: "its first message lacked a group element or a host" };
  }
  const ownAd = adOf(self);
  const cpace = new CPace("responder", Buffer.from(invite.code), INVITE_CI, sid, Buffer.from(ownAd));
  const result = cpace.finish(ya, Buffer.from(first.ad as string));
  if (!result) {
    channel.end({ error: "LABC_BAD_MESSAGE", message: "not a group element" });
    return { kind: "broken", reason: "it sent something that is not a group element" };
  }
  channel.send({ y: b64(cpace.y), ad: ownAd, tag: b64(result.ownTag) });
  const second = await channel.receive();
  const ta = bytesOf(second, "tag", 64);
  if (!ta || !tagsMatch(result.expectedTag, ta)) {
    channel.end(WRONG_CODE);
    return { kind: "wrong-code" };
  }
  const key = sealKey(result.isk, sid);
  channel.send({ sealed: seal(key, 1, SEALED_SECRET, payload) });
  const receipt = open(key, 2, SEALED_RECEIPT, bytesOf(await channel.receive(), "sealed"));
  channel.end();
  if (!receipt) return { kind: "broken", reason: "its receipt did not open under the exchange's key" };
  if (receipt.stored !== true) return { kind: "not-stored", peer: joiner, reason: String(receipt.reason ?? "it did not say why").slice(0, 300) };
  return { kind: "joined", peer: joiner };
}

/** What the joining side got. */
export type JoinOutcome =
  | { kind: "received"; payload: InvitePayload; inviter: InviteParty; confirm: (stored: true | string) => void }
  | { kind: "wrong-code" }
  | { kind: "refused"; code: string; message: string };

/** A refusal the inviter sent instead of the expected message, if it is one. */
function refusalOf(message: InviteMessage): JoinOutcome | undefined {
  if (typeof message.error !== "string") return undefined;
  if (message.error === "LABC_WRONG_CODE") return { kind: "wrong-code" };
  return { kind: "refused", code: message.error.slice(0, 40), message: String(message.message ?? "").slice(0, 300) };
}

/**
 * The joining side, on a connection it opened to the inviter. On "received", it must call
 * `confirm` with true once the secret is stored, or with why it was not.
 */
export async function receiveSecret(channel: MessagePipe, code: { text: string; nameplate: string }, self: InviteParty): Promise<JoinOutcome> {
  const hello = await channel.receive();
  const sid = bytesOf(hello, "sid", 16);
  if (hello.labc !== "invite" || hello.v !== 1 || !sid) {
    channel.end();
    return { kind: "refused", code: "LABC_BAD_MESSAGE", message: "it does not speak labc's invite protocol (version 1)" };
  }
  const ad = adOf(self);
  const cpace = new CPace("initiator", Buffer.from(code.text), INVITE_CI, sid, Buffer.from(ad));
  channel.send({ nameplate: code.nameplate, y: b64(cpace.y), ad });
  const second = await channel.receive();
  const refusal = refusalOf(second);
  if (refusal) return refusal;
  const yb = bytesOf(second, "y", 32);
  const tb = bytesOf(second, "tag", 64);
  const inviter = partyOf(second.ad);
  const result = yb && inviter && cpace.finish(yb, Buffer.from(second.ad as string));
  if (!result || !tb || !inviter) {
    channel.end();
    return { kind: "refused", code: "LABC_BAD_MESSAGE", message: "its answer holds no group element, tag or host" };
  }
  if (!tagsMatch(result.expectedTag, tb)) {
    channel.end(WRONG_CODE);
    return { kind: "wrong-code" };
  }
  channel.send({ tag: b64(result.ownTag) });
  const third = await channel.receive();
  const late = refusalOf(third);
  if (late) return late;
  const key = sealKey(result.isk, sid);
  const payload = open(key, 1, SEALED_SECRET, bytesOf(third, "sealed"));
  if (!payload || typeof payload.secret !== "string") {
    channel.end();
    return { kind: "refused", code: "LABC_BAD_MESSAGE", message: "its sealed secret did not open under the exchange's key" };
  }
  const confirm = (stored: true | string) =>
    channel.end({ sealed: seal(key, 2, SEALED_RECEIPT, stored === true ? { stored: true } : { stored: false, reason: stored }) });
  return { kind: "received", payload: { secret: payload.secret }, inviter, confirm };
}
