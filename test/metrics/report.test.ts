import { test } from "node:test";
import assert from "node:assert/strict";
import { renderReport } from "../../src/metrics/report/render.ts";
import { newRequestOutcomes } from "../../src/metrics/slo.ts";

function outcomes(n: number, ttftBase: number) {
  const o = newRequestOutcomes(n, ["a", "b<script>"], Int32Array.from({ length: n }, (_, i) => i % 2), Float64Array.from({ length: n }, (_, i) => i * 0.1));
  for (let i = 0; i < n; i++) {
    o.ttftMs[i] = ttftBase + i;
    o.e2eMs[i] = ttftBase + i + 100;
    o.outputTokens[i] = 11;
    o.ok[i] = i % 7 === 0 ? 0 : 1;
  }
  return o;
}

test("renderReport: runs side by side, escaped names, embedded data, inline echarts", () => {
  const html = renderReport({
    title: "policies <compared>",
    description: "sim, 2 runs",
    runs: [
      { name: "prism", outcomes: outcomes(50, 10), slo: { ttftMs: 40, tpotMs: 20 }, kvSamples: [{ tMs: 0, kvPagesByModel: { a: 1 } }, { tMs: 100, kvPagesByModel: { a: 3, "b<script>": 2 } }] },
      { name: "static", outcomes: outcomes(50, 30), slo: { ttftMs: 40, tpotMs: 20 }, details: { seed: 1 } },
    ],
  });
  assert.match(html, /<title>policies &#60;compared&#62;<\/title>/);
  assert.ok(!html.includes("b<script>"), "model names are escaped in HTML and JSON");
  assert.match(html, /"name":"prism"/);
  assert.match(html, /id="kv0"/);
  assert.ok(!html.includes('id="kv1"'), "no KV chart for a run without samples");
  assert.ok(html.includes("echarts"));
  // exactly one closing tag per script element (the inlined library cannot terminate its element early)
  assert.equal((html.match(/<script/g) ?? []).length, (html.match(/<\/script>/g) ?? []).length);
  const small = renderReport({ title: "t", runs: [], inlineEcharts: false });
  assert.ok(small.length < 20_000);
});
