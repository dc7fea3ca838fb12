// Node's Buffer by import: the global is a getter (Node 20), 10-15 ns a use on the hot paths.
import { Buffer } from "node:buffer";
import { BadArgumentsError, MalformedFrameError } from "../errors.js";
import { MESSAGE_HEADER_BYTES } from "./frame-decoder.js";
import { DEFAULT_LIMITS, type Limits } from "./limits.js";
import { Kind, KIND_NAMES, type Message, type ReqBody } from "./message.js";
import { Pieces } from "./pieces.js";
import { CLOSE, parseValue, readShaped, REPLY_HEAD } from "./shaped-body.js";
import { BIN_KEY, isPlain, placeBinary, restoreTypes, toWire, TYPES_KEY } from "./values.js";

const NO_BLOBS: Uint8Array[] = [];

/**
 * Encodes one message as a frame. Returns one buffer, or, when the body holds binary data,
 * the header buffer followed by the binary parts as they are, so a large payload is never
 * copied on its way to the socket.
 */
export function encodeMessage(
  kind: Kind,
  id: number,
  body: object,
  limits: Limits = DEFAULT_LIMITS,
): Buffer | Buffer[] {
  const { value, blobs, paths, types } = toWire(body, limits);
  if (paths.length) (value as Record<string, unknown>)[BIN_KEY] = paths;
  if (types.length) (value as Record<string, unknown>)[TYPES_KEY] = types;
  return frame(kind, id, toJson(value), blobs, limits);
}

const PUBLICATION_HEADS = new Pieces<string>((topic) => Buffer.from(`{"topic":${JSON.stringify(topic)},"args":`));
const REQUEST_HEADS = new Pieces<string>((fn) => Buffer.from(`{"fn":${JSON.stringify(fn)},"args":`));
const REQUEST_TAILS = new Pieces<number | undefined>((ms) => Buffer.from(requestTail(ms)));

/**
 * A publication's frame, the same bytes as `encodeMessage(Kind.pub, 0, { topic, args, groups })`
 * (no `groups` when there are none).
 * Publishing is the hottest path there is: only the arguments are searched for values beyond JSON and
 * made into text, the rest is copied (see Pieces).
 */
export function encodePublication(topic: string, args: unknown[], limits: Limits = DEFAULT_LIMITS, groups?: readonly string[]): Buffer | Buffer[] {
  if (groups?.length) return encodeMessage(Kind.pub, 0, { topic, args, groups }, limits);
  if (!isPlain(args, 1, limits)) return encodeMessage(Kind.pub, 0, { topic, args }, limits);
  return textFrame(Kind.pub, 0, PUBLICATION_HEADS.get(topic), toJson(args), CLOSE, limits);
}

/**
 * A request's frame, the same bytes as `encodeMessage(Kind.req, id, { fn, args, timeoutMs, trace })`
 * (no `timeoutMs` or `trace` when undefined). Calls are the hot path, as publications are, and
 * written the same way; a trace (a caller with hooks) makes a tail of its own.
 */
export function encodeRequest(
  id: number,
  fn: string,
  args: unknown[],
  timeoutMs: number | undefined,
  limits: Limits = DEFAULT_LIMITS,
  trace?: string,
  /** The header's flags (FLAG_FAR): a router's, for a request it passes on. */
  flags = 0,
  /** The server a request sent by way of the routers is for. */
  target?: string,
): Buffer | Buffer[] {
  let frame: Buffer | Buffer[];
  if (!isPlain(args, 1, limits)) {
    const body: ReqBody = { fn, args };
    if (target !== undefined) body.target = target;
    if (timeoutMs !== undefined) body.timeoutMs = timeoutMs;
    if (trace !== undefined) body.trace = trace;
    frame = encodeMessage(Kind.req, id, body, limits);
  } else {
    const tail = trace === undefined && target === undefined ? REQUEST_TAILS.get(timeoutMs) : Buffer.from(requestTail(timeoutMs, trace, target));
    frame = textFrame(Kind.req, id, REQUEST_HEADS.get(fn), toJson(args), tail, limits);
  }
  // The flags byte, after the length prefix and the kind (docs/protocol.md).
  if (flags !== 0) (Array.isArray(frame) ? frame[0]! : frame)[5] = flags;
  return frame;
}

/** What follows a request's arguments, in the order of its body's keys: target, timeoutMs, trace. */
export function requestTail(timeoutMs: number | undefined, trace?: string, target?: string): string {
  const targetText = target === undefined ? "" : `,"target":${JSON.stringify(target)}`;
  const timeoutText = timeoutMs === undefined ? "" : `,"timeoutMs":${JSON.stringify(timeoutMs)}`;
  return `${targetText}${timeoutText}${trace === undefined ? "" : `,"trace":${JSON.stringify(trace)}`}}`;
}

/** A reply's frame, the same bytes as `encodeMessage(Kind.rep, id, { v: value })`, written as requests are. */
export function encodeReply(id: number, value: unknown, limits: Limits = DEFAULT_LIMITS): Buffer | Buffer[] {
  return valueFrame(Kind.rep, id, value, limits);
}

/** A stream item's frame: the body of a reply, `{v}`, under kind `item`. */
export function encodeItem(id: number, value: unknown, limits: Limits = DEFAULT_LIMITS): Buffer | Buffer[] {
  return valueFrame(Kind.item, id, value, limits);
}

function valueFrame(kind: Kind, id: number, value: unknown, limits: Limits): Buffer | Buffer[] {
  if (!isPlain(value, 1, limits)) return encodeMessage(kind, id, { v: value }, limits);
  const text: string | undefined = toJson(value);
  // What JSON leaves out (undefined) leaves `v` out, as in an object.
  if (text === undefined) return frame(kind, id, "{}", NO_BLOBS, limits);
  return textFrame(kind, id, REPLY_HEAD, text, CLOSE, limits);
}

function toJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw unsendable(error);
  }
}

function unsendable(error: unknown): BadArgumentsError {
  return new BadArgumentsError(`value cannot be sent: ${(error as Error).message}`);
}

function frame(kind: Kind, id: number, json: string, blobs: Uint8Array[], limits: Limits): Buffer | Buffer[] {
  const jsonBytes = Buffer.byteLength(json);
  const head = header(kind, id, jsonBytes, blobs, limits);
  head.write(json, BODY_AT, jsonBytes, "utf8");
  if (blobs.length === 0) return head;
  let at = BODY_AT + jsonBytes;
  for (const blob of blobs) {
    head.writeUInt32BE(blob.byteLength, at);
    at += 4;
  }
  const parts: Buffer[] = [head];
  for (const blob of blobs) {
    if (blob.byteLength) parts.push(Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength));
  }
  return parts;
}

/** A frame with no binary parts whose JSON body is `head`, the text `middle`, then `tail`. */
function textFrame(kind: Kind, id: number, head: Buffer, middle: string, tail: Buffer, limits: Limits): Buffer {
  const middleBytes = Buffer.byteLength(middle);
  const out = header(kind, id, head.length + middleBytes + tail.length, NO_BLOBS, limits);
  // `set`, not Buffer's `copy`: for pieces this small, copy's checks cost more than the bytes.
  out.set(head, BODY_AT);
  out.write(middle, BODY_AT + head.length, middleBytes, "utf8");
  out.set(tail, BODY_AT + head.length + middleBytes);
  return out;
}

/**
 * The frame of a body `head + middle + tail` as a buffer, `head` and `tail` ASCII text and
 * `middle` any text of `middleBytes` bytes (frame-text.ts, when the arguments are not ASCII);
 * refuses a frame over the size limit, as every encoder here does.
 */
export function bodyFrame(kind: Kind, id: number, head: string, middle: string, middleBytes: number, tail: string, limits: Limits): Buffer {
  const out = header(kind, id, head.length + middleBytes + tail.length, NO_BLOBS, limits);
  out.write(head, BODY_AT, head.length, "latin1");
  out.write(middle, BODY_AT + head.length, middleBytes, "utf8");
  out.write(tail, BODY_AT + head.length + middleBytes, tail.length, "latin1");
  return out;
}

/** Where a frame's JSON body starts: after its length prefix and the message header. */
const BODY_AT = 4 + MESSAGE_HEADER_BYTES;

/**
 * A buffer for a frame's length prefix, header, JSON body and table of binary part lengths,
 * with the prefix and header written; refuses a frame over the size limit.
 */
function header(kind: Kind, id: number, jsonBytes: number, blobs: Uint8Array[], limits: Limits): Buffer {
  const headBytes = BODY_AT + jsonBytes + 4 * blobs.length;
  let total = headBytes - 4;
  for (const blob of blobs) total += blob.byteLength;
  if (total > limits.maxFrameBytes) {
    throw new BadArgumentsError(
      `message of ${total} bytes exceeds the maximum frame size of ${limits.maxFrameBytes} bytes`,
    );
  }
  const head = Buffer.allocUnsafe(headBytes);
  // Byte by byte: writeUInt32BE checks its arguments each time, which small frames notice.
  putUint32(head, 0, total);
  head[4] = kind;
  head[5] = 0;
  head[6] = blobs.length >>> 8;
  head[7] = blobs.length & 0xff;
  putUint32(head, 8, id >>> 0);
  putUint32(head, 12, jsonBytes);
  return head;
}

function uint32At(frame: Buffer, at: number): number {
  return frame[at]! * 0x1000000 + ((frame[at + 1]! << 16) | (frame[at + 2]! << 8) | frame[at + 3]!);
}

function putUint32(into: Buffer, at: number, value: number): void {
  into[at] = value >>> 24;
  into[at + 1] = value >>> 16;
  into[at + 2] = value >>> 8;
  into[at + 3] = value;
}

/**
 * `flags` bit of a request a router passes on for a caller on another host (docs/protocol.md):
 * set by that router in the frame itself, so that the server applies what other hosts may call.
 */
export const FLAG_FAR = 1;

/** Whether a request's frame says it comes from another host. */
export function isFar(message: Message): boolean {
  return message.frame !== undefined && (message.frame[1]! & FLAG_FAR) !== 0;
}

/**
 * `flags` bit of a request that came from another site over the NATS backplane
 * (docs/protocol.md): set by the gateway that takes it from NATS, kept by the routers that pass it
 * on, so that the server knows the caller proved no network secret (ServiceControl refuses it).
 */
export const FLAG_OTHER_SITE = 2;

/** Whether a request's frame says it comes from another site. */
export function isFromOtherSite(message: Message): boolean {
  return message.frame !== undefined && (message.frame[1]! & FLAG_OTHER_SITE) !== 0;
}

/** The frame again, under another request id, as it goes out on another connection. */
export function reframe(frame: Buffer, id: number): Buffer[] {
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeUInt32BE(frame.length, 0);
  // The frame was decoded already and nothing reads its id again: rewritten in place.
  frame.writeUInt32BE(id >>> 0, 4);
  return [prefix, frame];
}

/** Decodes a frame handed out by FrameDecoder (the bytes after the length prefix). */
export function decodeMessage(frame: Buffer): Message {
  if (frame.length < MESSAGE_HEADER_BYTES) throw new MalformedFrameError("frame shorter than its header");
  const kind = frame[0] as Kind;
  if (KIND_NAMES[kind] === undefined) throw new MalformedFrameError(`unknown message kind ${kind}`);
  // By hand: readUInt32BE checks its bounds, which the length test above already did.
  const blobCount = (frame[2]! << 8) | frame[3]!;
  const id = uint32At(frame, 4);
  const jsonBytes = uint32At(frame, 8);
  const jsonEnd = MESSAGE_HEADER_BYTES + jsonBytes;
  const tableEnd = jsonEnd + 4 * blobCount;
  if (tableEnd > frame.length) throw new MalformedFrameError("JSON length runs past the frame");
  if (blobCount === 0) {
    const body = readShaped(kind, frame, MESSAGE_HEADER_BYTES, jsonEnd) ?? restored(parseBody(kind, frame, jsonEnd));
    if (tableEnd !== frame.length) throw new MalformedFrameError("bytes left after the body");
    return { kind, id, body, frame };
  }
  const body = parseBody(kind, frame, jsonEnd);
  const parts: Buffer[] = [];
  let at = tableEnd;
  for (let i = 0; i < blobCount; i++) {
    const length = frame.readUInt32BE(jsonEnd + 4 * i);
    if (at + length > frame.length) throw new MalformedFrameError("binary part runs past the frame");
    parts.push(frame.subarray(at, at + length));
    at += length;
  }
  if (at !== frame.length) throw new MalformedFrameError("bytes left after the binary parts");
  const paths = body[BIN_KEY];
  delete body[BIN_KEY];
  placeBinary(body, paths, parts);
  return { kind, id, body: restored(body), frame };
}

/** The body with the values listed under `$types` brought back to their kinds. */
function restored(body: any): any {
  const types = body[TYPES_KEY];
  if (types !== undefined) {
    delete body[TYPES_KEY];
    restoreTypes(body, types);
  }
  return body;
}

function parseBody(kind: Kind, frame: Buffer, jsonEnd: number): any {
  const body: any = parseValue(kind, frame, MESSAGE_HEADER_BYTES, jsonEnd);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new MalformedFrameError(`${KIND_NAMES[kind]} body is not an object`);
  }
  return body;
}
