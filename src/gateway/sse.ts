/**
 * The byte path of a Server-Sent Events response. Events queued during one tick (the tokens one device
 * step produced for this response: n > 1 choices, several prompts, a finish event) leave together at the
 * end of that tick, so each response costs one write per step, and no event waits past the step that
 * produced it (the device loop's yield calls flushSseWrites(); otherwise the flush runs on nextTick).
 *
 * After the first write went through node:http (status line, headers and the first events in one
 * writev), later writes are framed here as one HTTP/1.1 chunk and written straight to the socket: one
 * string, one write(2), instead of http's corked writev of size line, data and CRLF plus its nextTick.
 * Node sends the terminating chunk on `end()`. An HTTP/1.0 client (no chunked encoding), or a response
 * whose headers are still queued behind a pipelined predecessor, keeps going through `res.write`.
 */
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";

const dirty: SseWriter[] = [];
let flushScheduled = false;

/**
 * Writes every response's queued events now. The device loop calls it at the end of each step (its yield);
 * the nextTick flush covers events queued outside a step (headers, a cancellation's last events).
 */
export function flushSseWrites(): void {
  if (dirty.length === 0) return;
  flushAll();
}

function flushAll(): void {
  flushScheduled = false;
  // flush() never queues again, so the list only shrinks here
  for (let i = 0; i < dirty.length; i++) dirty[i]!.flush();
  dirty.length = 0;
}

export class SseWriter {
  private pending = "";
  private queued = false;
  private started = false;
  private ended = false;
  /** Set once the headers are on the socket and the response uses chunked encoding. */
  private raw: Socket | null = null;

  constructor(private readonly res: ServerResponse) {}

  /** Queue event bytes; before `start()` they wait for the status line. */
  send(text: string): void {
    if (this.ended) return;
    this.pending += text;
    if (this.started && !this.queued) this.queue();
  }

  /** Status line and headers: written with the first events (this tick's, or the next one's). */
  start(headers: Record<string, string>): void {
    this.res.writeHead(200, headers);
    this.started = true;
    // The headers leave this tick even without an event, so a client sees its 200 before the first token.
    this.queue();
  }

  /** Last events and the terminating chunk, in one write. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const text = this.pending;
    this.pending = "";
    if (!this.started) return;
    if (text.length > 0) this.res.end(text);
    else this.res.end();
  }

  /** The client went away: drop whatever is queued. */
  abandon(): void {
    this.ended = true;
    this.pending = "";
  }

  /** Called by the tick's flush (also safe to call directly). */
  flush(): void {
    this.queued = false;
    if (this.ended) return;
    const text = this.pending;
    const raw = this.raw;
    if (raw !== null) {
      if (text.length === 0) return;
      this.pending = "";
      if (!raw.destroyed) raw.write(`${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`);
      return;
    }
    this.pending = "";
    const res = this.res;
    const sock = res.socket;
    if (text.length > 0) {
      res.write(text);
      // res.write corks the socket until its nextTick; a device loop running steps back to back as
      // microtasks would hold these bytes until it yields, so they leave now (the later uncork is a no-op).
      if (sock !== null && sock.writableCorked > 0) sock.uncork();
    } else res.flushHeaders();
    // Nothing of this response waits inside node:http (outputSize 0), so the socket's order is the response's.
    if (res.chunkedEncoding && sock !== null && res.writableLength === sock.writableLength) this.raw = sock;
  }

  private queue(): void {
    this.queued = true;
    dirty.push(this);
    if (!flushScheduled) {
      flushScheduled = true;
      process.nextTick(flushAll);
    }
  }
}
