import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeTrace, formatDescription } from "../../src/workload/describe.ts";
import { parseTrace, readTrace } from "../../src/workload/trace-format.ts";
import { Command } from "commander";
import { register } from "../../src/cli/commands/trace.ts";

// Only this command is loaded (not every command under src/cli/commands), so others' work cannot break it.
let captured = "";
async function prism(args: string[]): Promise<number> {
  const program = new Command("prism").exitOverride();
  register(program, { out: (s) => (captured += s), err: () => {} });
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    if ((e as { code?: string }).code === "PRISM_CLI_USAGE") return 2;
    throw e;
  }
}

test("describe: exact per-model rate, IAT CV, peak/mean, idle fraction and token stats", () => {
  const t = parseTrace(
    "arrival_s,model,input_tokens,output_tokens\n" +
      "0,a,10,1\n1,a,20,2\n2,a,30,3\n3,a,40,4\n" + // a: regular, one per second in bins 0..0
      "5,b,100,50\n5.5,b,100,50\n19,b,100,50\n20,a,50,5\n",
  );
  const d = describeTrace(t, { binS: 5, durationS: 20 });
  assert.equal(d.numRequests, 8);
  assert.equal(d.binS, 5);
  const a = d.perModel.find((m) => m.name === "a")!;
  const b = d.perModel.find((m) => m.name === "b")!;
  assert.equal(a.numRequests, 5);
  assert.equal(a.rateRps, 0.25);
  // bins: [0,5) 4, [5,10) 0, [10,15) 0, [15,20]→ last bin 1 (20 clamps into the last bin)
  assert.equal(a.idleFraction, 0.5);
  assert.equal(a.peakToMean, 4 / (5 / 4));
  assert.equal(a.inputTokens.p50, 30);
  assert.equal(a.inputTokens.max, 50);
  assert.equal(a.outputTokens.mean, 3);
  // a's gaps 1,1,1,17: mean 5, sd sqrt(((16*3)+144)/4)=sqrt(48)
  assert.ok(Math.abs(a.iatCv - Math.sqrt(48) / 5) < 1e-12);
  assert.equal(b.numRequests, 3);
  assert.equal(d.perModel[0]!.name, "a");
  assert.equal(d.top1Share, 5 / 8);
  assert.match(formatDescription(d), /8 requests, 2 models/);
});

test("prism trace gen + describe through the CLI", async () => {
  const dir = mkdtempSync(join(tmpdir(), "prism-cli-trace-"));
  const out = join(dir, "t.csv");
  try {
    const rc = await prism(["trace", "gen", "synthetic", "--rate", "5", "--duration", "100", "--num-models", "3", "--lengths", "uniform:8-64", "--seed", "7", "--max-output", "20", "-o", out]);
    assert.equal(rc, 0);
    const t = readTrace(out);
    assert.deepEqual(t.modelNames.slice().sort(), ["m0", "m1", "m2"]);
    assert.ok(t.outputTokens.every((x) => x <= 20));
    assert.match(readFileSync(out, "utf8"), /^# prism trace gen \{"generator":"synthetic","seed":7/);
    captured = "";
    assert.equal(await prism(["trace", "describe", out, "--json"]), 0);
    assert.equal(JSON.parse(captured).numRequests, t.numRequests);
    assert.equal(await prism(["trace", "gen", "bogus"]), 2);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
