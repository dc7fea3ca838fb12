import type { Socket } from "node:net";

/**
 * The baseline: the least a Node program can do to call a function over TCP. Each frame is an
 * 8-byte header (u32 length of the body, u32 request id) and a body: JSON, or raw bytes for the
 * binary variant. Frames split or coalesced by TCP are handled, and a large frame is copied
 * once, when it is complete.
 */
export function rawFrame(id: number, body: unknown): Buffer {
  const json = JSON.stringify(body);
  const length = Buffer.byteLength(json);
  const frame = Buffer.allocUnsafe(8 + length);
  frame.writeUInt32BE(length, 0);
  frame.writeUInt32BE(id, 4);
  frame.write(json, 8);
  return frame;
}

/** Writes a raw-binary frame: the header, then the bytes as they are, in one batch. */
export function writeBinaryFrame(socket: Socket, id: number, bytes: Buffer): void {
  const head = Buffer.allocUnsafe(8);
  head.writeUInt32BE(bytes.length, 0);
  head.writeUInt32BE(id, 4);
  socket.cork();
  socket.write(head);
  socket.write(bytes);
  socket.uncork();
}

/** Feeds chunks; calls back with (id, body bytes) per complete frame. */
export function rawFrames(onFrame: (id: number, body: Buffer) => void): (chunk: Buffer) => void {
  let chunks: Buffer[] = [];
  let size = 0;
  let need = 8;
  return (chunk) => {
    chunks.push(chunk);
    size += chunk.length;
    while (size >= need) {
      const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      const length = data.readUInt32BE(0);
      if (size < 8 + length) {
        // Wait for the whole frame before copying anything again.
        chunks = [data];
        need = 8 + length;
        return;
      }
      onFrame(data.readUInt32BE(4), data.subarray(8, 8 + length));
      const rest = data.subarray(8 + length);
      chunks = rest.length ? [rest] : [];
      size = rest.length;
      need = 8;
    }
  };
}

/** Feeds chunks; calls back with (id, parsed JSON body) per complete frame. */
export function rawReader(onFrame: (id: number, body: any) => void): (chunk: Buffer) => void {
  return rawFrames((id, body) => onFrame(id, JSON.parse(body.toString("utf8"))));
}
