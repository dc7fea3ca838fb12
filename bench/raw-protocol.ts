/**
 * The baseline: the least a Node program can do to call a function over TCP. Each frame is an
 * 8-byte header (u32 length of the body, u32 request id) and a JSON body; both sides decode
 * and encode JSON, as labc does, and handle frames split or coalesced by TCP.
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

/** Feeds chunks, calls back with (id, parsed body) per complete frame. */
export function rawReader(onFrame: (id: number, body: any) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    let data = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    while (data.length - at >= 8) {
      const length = data.readUInt32BE(at);
      if (data.length - at < 8 + length) break;
      onFrame(data.readUInt32BE(at + 4), JSON.parse(data.toString("utf8", at + 8, at + 8 + length)));
      at += 8 + length;
    }
    pending = at === data.length ? Buffer.alloc(0) : data.subarray(at);
    data = pending;
  };
}
