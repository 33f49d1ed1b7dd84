// Line framing for the line-protocol examples (chat, pubsub, rate-limit): a connection's bytes as bounded lines.
import type { Conn } from 'muxnet';

/** Thrown by {@link lines} when a line is longer than its bound: the caller drops the client. */
export class LineTooLong extends Error {}

/**
 * Yields the lines `conn` sends, without their "\n" or "\r\n", until end of stream (a last
 * line without "\n" too). A line longer than `maxLine` characters throws {@link LineTooLong},
 * so a client cannot make the server buffer without bound (Go: bufio.Scanner's max token).
 */
export async function* lines(conn: Conn, maxLine = 4096): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let pending = '';
  // Each pooled chunk is decoded at once: no view of the pool is kept across iterations.
  for await (const data of conn) {
    pending += dec.decode(data, { stream: true });
    let start = 0;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n', start)) {
      if (nl - start > maxLine) throw new LineTooLong(`line longer than ${maxLine} characters`);
      yield pending.slice(start, nl).replace(/\r$/, '');
      start = nl + 1;
    }
    pending = pending.slice(start);
    if (pending.length > maxLine) throw new LineTooLong(`line longer than ${maxLine} characters`);
  }
  if (pending.length > 0) yield pending;
}
