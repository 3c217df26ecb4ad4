import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import {
  TraceBuilder,
  compactModels,
  formatTrace,
  parseTrace,
  readTrace,
  sliceTrace,
  traceFromRows,
  traceRows,
  writeTrace,
  type TraceRow,
} from "../../src/workload/trace-format.ts";

const H = "arrival_s,model,input_tokens,output_tokens\n";

function expectInvalid(text: string, line: number, column?: string): void {
  assert.throws(
    () => parseTrace(text),
    (e: unknown) => {
      const err = e as { code: string; details: { line: number; column?: string }; message: string };
      assert.equal(err.code, "PRISM_TRACE_INVALID", err.message);
      assert.equal(err.details.line, line, err.message);
      if (column !== undefined) assert.equal(err.details.column, column, err.message);
      assert.match(err.message, new RegExp(`line ${line}`));
      return true;
    },
  );
}

test("parses a trace with extra columns, comments, CRLF and trailing blank lines", () => {
  const t = parseTrace("# made by hand\nreq,arrival_s,model,input_tokens,output_tokens,x\r\n1,0,a,5,7,q\r\n2,0.5,b,6,8,r\n3,1.25,a,1,1,s\n\n");
  assert.equal(t.numRequests, 3);
  assert.deepEqual(t.modelNames, ["a", "b"]);
  assert.deepEqual([...t.arrivalS], [0, 0.5, 1.25]);
  assert.deepEqual([...t.modelIndex], [0, 1, 0]);
  assert.deepEqual([...t.inputTokens], [5, 6, 1]);
  assert.deepEqual([...t.outputTokens], [7, 8, 1]);
});

test("rejects malformed traces naming line and column", () => {
  expectInvalid(H + "0,a,5,x\n", 2, "output_tokens");
  expectInvalid(H + "0,a,5,7\nabc,a,5,7\n", 3, "arrival_s");
  expectInvalid(H + "0,a,5,7\n0.1,a,5\n", 3, "output_tokens");
  expectInvalid(H + "1,a,5,7\n0.5,a,5,7\n", 3, "arrival_s");
  expectInvalid(H + "0,a,-1,7\n", 2, "input_tokens");
  expectInvalid(H + "0,a,5,-3\n", 2, "output_tokens");
  expectInvalid(H + "0,,5,7\n", 2, "model");
  expectInvalid(H + "0,a,5.5,7\n", 2, "input_tokens");
  expectInvalid(H + "-1,a,5,7\n", 2, "arrival_s");
  expectInvalid(H + "NaN,a,5,7\n", 2, "arrival_s");
  expectInvalid(H + ",a,5,7\n", 2, "arrival_s");
  expectInvalid("# c\narrival_s,model,input_tokens\n0,a,5\n", 2, "output_tokens");
  expectInvalid("", 1);
});

test("write → read round trip (file and text)", () => {
  const rows: TraceRow[] = [
    { arrivalS: 0, model: "m0", inputTokens: 10, outputTokens: 20 },
    { arrivalS: 0.000001, model: "m1", inputTokens: 1, outputTokens: 1 },
    { arrivalS: 12.345678, model: "m0", inputTokens: 4096, outputTokens: 0 },
  ];
  const t = traceFromRows(rows);
  const dir = mkdtempSync(join(tmpdir(), "prism-trace-"));
  try {
    const p = join(dir, "t.csv");
    writeTrace(p, t, ["seed=1 kind=test"]);
    assert.deepEqual(traceRows(readTrace(p)), rows);
    assert.deepEqual(traceRows(readTrace(formatTrace(t))), rows);
  } finally {
    rmSync(dir, { recursive: true });
  }
  assert.throws(() => readTrace("/nonexistent/trace.csv"), /cannot read trace/);
});

test("round trip property: arrivals to 1 µs, everything else exact", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          arrivalS: fc.double({ min: 0, max: 1e6, noNaN: true }),
          model: fc.constantFrom("a", "b-1", "model_x", "m.3"),
          inputTokens: fc.integer({ min: 0, max: 1 << 20 }),
          outputTokens: fc.integer({ min: 0, max: 1 << 20 }),
        }),
        { maxLength: 50 },
      ),
      (rows) => {
        const t = traceFromRows(rows);
        const back = parseTrace(formatTrace(t));
        assert.equal(back.numRequests, t.numRequests);
        for (let i = 0; i < t.numRequests; i++) {
          assert.ok(Math.abs(back.arrivalS[i]! - t.arrivalS[i]!) <= 5e-7 + 1e-12 * t.arrivalS[i]!);
          assert.equal(back.modelNames[back.modelIndex[i]!], t.modelNames[t.modelIndex[i]!]);
          assert.equal(back.inputTokens[i], t.inputTokens[i]);
          assert.equal(back.outputTokens[i], t.outputTokens[i]);
        }
      },
    ),
    { numRuns: 100, seed: 7 },
  );
});

test("builder sorts stably, grows, slices and compacts", () => {
  const b = new TraceBuilder(1, ["unused", "x", "y"]);
  for (let i = 0; i < 100; i++) b.add(100 - (i >> 1), i % 2 ? "x" : "y", i, i);
  const t = b.build();
  assert.equal(t.numRequests, 100);
  for (let i = 1; i < 100; i++) assert.ok(t.arrivalS[i]! >= t.arrivalS[i - 1]!);
  // ties keep insertion order: at arrival 100 come i=0 then i=1
  assert.deepEqual([t.inputTokens[98], t.inputTokens[99]], [0, 1]);
  const s = sliceTrace(t, 60, 70, { rebase: true });
  assert.equal(s.numRequests, 20);
  assert.equal(s.arrivalS[0], 0);
  const c = compactModels(t);
  assert.deepEqual(c.modelNames, ["x", "y"]);
  assert.throws(() => formatTrace(traceFromRows([{ arrivalS: 0, model: "a,b", inputTokens: 1, outputTokens: 1 }])), /model name/);
});
