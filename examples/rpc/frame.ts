// The RPC examples' wire format: each frame is [u32 payload length][u32 call id][payload: JSON], big-endian.
import type { Conn } from 'muxnet';

/** Bytes before the payload: its length, then the call id. */
export const headerSize = 8;
/** The largest payload either side accepts (1 MiB): a bigger one is refused, never buffered. */
export const maxPayload = 1 << 20;

/** A frame announcing a payload over the limit; its id is known, so the refusal can answer it. */
export class FrameTooLarge extends Error {
  constructor(readonly id: number, readonly length: number) {
    super(`frame too large: ${length} bytes, the limit is ${maxPayload}`);
  }
}

/** A frame whose payload is not JSON: the stream cannot be trusted any more. */
export class MalformedFrame extends Error {}

/** One frame: `message` as JSON, after its header. */
export function encodeFrame(id: number, message: unknown): Buffer {
  const payload = Buffer.from(JSON.stringify(message));
  const frame = Buffer.allocUnsafe(headerSize + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.writeUInt32BE(id, 4);
  payload.copy(frame, headerSize);
  return frame;
}

/**
 * Yields the frames `conn` sends, parsed, until end of stream. Throws {@link FrameTooLarge}
 * as soon as a header announces more than {@link maxPayload}, {@link MalformedFrame} for a
 * payload that is not JSON or a stream that ends inside a frame. Buffers at most one frame.
 */
export async function* frames(conn: Conn): AsyncGenerator<{ id: number; message: unknown }> {
  let buf = Buffer.alloc(64 * 1024);
  let start = 0;
  let end = 0;
  for await (const data of conn) {
    if (end + data.length > buf.length) {
      // Room for the chunk: move the unparsed bytes to the front, and grow if that is not enough
      // (to at most one whole frame plus one chunk: a larger frame was refused at its header).
      const need = end - start + data.length;
      const next = need > buf.length ? Buffer.alloc(Math.max(need, buf.length * 2)) : buf;
      buf.copy(next, 0, start, end);
      [buf, start, end] = [next, 0, end - start];
    }
    buf.set(data, end);
    end += data.length;
    while (end - start >= headerSize) {
      const length = buf.readUInt32BE(start);
      const id = buf.readUInt32BE(start + 4);
      if (length > maxPayload) throw new FrameTooLarge(id, length);
      if (end - start < headerSize + length) break;
      let message: unknown;
      try {
        message = JSON.parse(buf.toString('utf8', start + headerSize, start + headerSize + length));
      } catch {
        throw new MalformedFrame(`frame ${id}: the payload is not JSON`);
      }
      start += headerSize + length;
      yield { id, message };
    }
  }
  if (end > start) throw new MalformedFrame(`the stream ended inside a frame (${end - start} bytes)`);
}
