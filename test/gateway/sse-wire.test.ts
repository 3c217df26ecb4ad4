// The SSE byte path on the wire (src/gateway/sse.ts): chunks framed by Prism itself must be valid HTTP/1.1
// chunked encoding on a kept-alive connection, also when several events of one step share a chunk (n > 1),
// when requests are pipelined (the second response's headers wait behind the first), and for an HTTP/1.0
// client (no chunked encoding: the body ends with the connection).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { startTestServer } from "../helpers/server.ts";

type Srv = Awaited<ReturnType<typeof startTestServer>>;

interface Parsed {
  status: number;
  headers: Map<string, string>;
  body: string;
  numChunks: number;
}

/** Parses one HTTP/1.x response from `buf` at `at`; null while incomplete. `untilClose`: body is the rest. */
function parseResponse(buf: Buffer, at: number, untilClose: boolean): { res: Parsed; end: number } | null {
  const headEnd = buf.indexOf("\r\n\r\n", at);
  if (headEnd < 0) return null;
  const lines = buf.subarray(at, headEnd).toString("latin1").split("\r\n");
  const status = Number(lines[0]!.split(" ")[1]);
  const headers = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
  let p = headEnd + 4;
  if (headers.get("transfer-encoding") !== "chunked") {
    if (!untilClose) throw new Error("expected a chunked response");
    return { res: { status, headers, body: buf.subarray(p).toString("utf8"), numChunks: 0 }, end: buf.length };
  }
  const parts: Buffer[] = [];
  let numChunks = 0;
  for (;;) {
    const lineEnd = buf.indexOf("\r\n", p);
    if (lineEnd < 0) return null;
    const sizeText = buf.subarray(p, lineEnd).toString("latin1");
    assert.match(sizeText, /^[0-9a-f]+$/, `chunk size line '${sizeText}'`);
    const size = parseInt(sizeText, 16);
    const dataStart = lineEnd + 2;
    if (buf.length < dataStart + size + 2) return null;
    assert.equal(buf.subarray(dataStart + size, dataStart + size + 2).toString("latin1"), "\r\n", "chunk must end with CRLF");
    if (size === 0) return { res: { status, headers, body: Buffer.concat(parts).toString("utf8"), numChunks }, end: dataStart + 2 };
    parts.push(buf.subarray(dataStart, dataStart + size));
    numChunks++;
    p = dataStart + size + 2;
  }
}

/** Sends `raw` on a new connection; resolves with `count` responses (or all until close). */
function exchange(srv: Srv, raw: string, count: number, untilClose = false): Promise<Parsed[]> {
  const u = new URL(srv.url);
  return new Promise((resolve, reject) => {
    const sock: Socket = connect(Number(u.port), u.hostname);
    let buf = Buffer.alloc(0);
    const tryParse = (closed: boolean): Parsed[] | null => {
      const out: Parsed[] = [];
      let at = 0;
      while (out.length < count) {
        const r = parseResponse(buf, at, closed && untilClose);
        if (r === null) return null;
        out.push(r.res);
        at = r.end;
      }
      return out;
    };
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (untilClose) return;
      const r = tryParse(false);
      if (r !== null) {
        sock.destroy();
        resolve(r);
      }
    });
    sock.on("end", () => {
      const r = tryParse(true);
      if (r !== null) resolve(r);
      else reject(new Error(`connection closed mid-response: ${buf.toString("latin1").slice(0, 300)}`));
    });
    sock.on("error", reject);
    sock.write(raw);
  });
}

function request(body: unknown, version = "1.1"): string {
  const b = JSON.stringify(body);
  return `POST /v1/completions HTTP/${version}\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`;
}

/** choice index → concatenated text, after checking every event is `data: <json>\n\n` and [DONE] is last. */
function eventsText(body: string): Map<number, string> {
  const events = body.split("\n\n");
  assert.equal(events.pop(), "", "body must end with a blank line");
  assert.equal(events.pop(), "data: [DONE]");
  const text = new Map<number, string>();
  for (const e of events) {
    assert.ok(e.startsWith("data: "), e);
    const j = JSON.parse(e.slice(6));
    for (const c of j.choices) text.set(c.index, (text.get(c.index) ?? "") + c.text);
  }
  return text;
}

describe("SSE on the wire", () => {
  let srv: Srv;
  let expected: string;
  const greedy = { model: "stories", prompt: "Once upon a time", max_tokens: 24, temperature: 0, ignore_eos: true };
  before(async () => {
    srv = await startTestServer();
    const r = await fetch(`${srv.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(greedy) });
    expected = ((await r.json()) as { choices: { text: string }[] }).choices[0]!.text;
    assert.ok(expected.length > 0);
  });
  after(async () => {
    await srv.close();
  });

  test("two streams, one kept-alive connection: valid chunks, same text as non-streaming", async () => {
    const one = request({ ...greedy, stream: true });
    const three = request({ ...greedy, stream: true, n: 3 });
    // the second request is sent only after the first response ended
    const u = new URL(srv.url);
    const sock = connect(Number(u.port), u.hostname);
    let buf = Buffer.alloc(0);
    const responses: Parsed[] = [];
    await new Promise<void>((resolve, reject) => {
      sock.on("error", reject);
      sock.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const r = parseResponse(buf, 0, false);
        if (r === null) return;
        responses.push(r.res);
        buf = buf.subarray(r.end);
        if (responses.length === 1) sock.write(three);
        else {
          sock.destroy();
          resolve();
        }
      });
      sock.write(one);
    });
    assert.equal(responses[0]!.status, 200);
    assert.equal(responses[0]!.headers.get("content-type"), "text/event-stream; charset=utf-8");
    assert.equal(eventsText(responses[0]!.body).get(0), expected);
    // one token per step per choice; the first chunk carries at least the first token
    assert.ok(responses[0]!.numChunks >= 2, `chunks ${responses[0]!.numChunks}`);
    const t3 = eventsText(responses[1]!.body);
    assert.deepEqual([...t3.keys()].sort(), [0, 1, 2]);
    for (const t of t3.values()) assert.equal(t, expected); // temperature 0: every choice is the greedy text
    // the three choices' events of one step share a chunk: fewer chunks than events
    const numEvents = responses[1]!.body.split("\n\n").length - 1;
    assert.ok(responses[1]!.numChunks < numEvents / 2, `${responses[1]!.numChunks} chunks for ${numEvents} events`);
  });

  test("pipelined requests: both responses complete and in order", async () => {
    const [a, b] = await exchange(srv, request({ ...greedy, stream: true }) + request({ ...greedy, stream: true, max_tokens: 5 }), 2);
    assert.equal(eventsText(a!.body).get(0), expected);
    const tb = eventsText(b!.body).get(0)!;
    assert.ok(expected.startsWith(tb) && tb.length > 0, tb);
  });

  test("HTTP/1.0 client: plain body ending with the connection", async () => {
    const [r] = await exchange(srv, request({ ...greedy, stream: true }, "1.0"), 1, true);
    assert.equal(r!.status, 200);
    assert.notEqual(r!.headers.get("transfer-encoding"), "chunked");
    assert.equal(eventsText(r!.body).get(0), expected);
  });
});
