import fc from "fast-check";
import { POLICY_NAMES } from "../../src/control/policies/registry.ts";
import { Cluster, tinyModel } from "./cluster-harness.ts";
const genLoad = fc.record({
  numDevices: fc.integer({ min: 1, max: 3 }),
  weights: fc.array(fc.integer({ min: 4, max: 24 }), { minLength: 2, maxLength: 5 }),
  arrivals: fc.array(fc.record({ atMs: fc.integer({ min: 0, max: 1500 }), model: fc.nat(), prompt: fc.integer({ min: 1, max: 40 }), maxTokens: fc.integer({ min: 1, max: 30 }) }), { minLength: 1, maxLength: 80 }),
  policy: fc.constantFrom(...POLICY_NAMES), tau: fc.constantFrom(0, 0.2), maxReplicas: fc.constantFrom(1, 2),
});
const tot: Record<string, number> = {};
let t0 = Date.now();
for (const g of fc.sample(genLoad, { numRuns: 60, seed: 7 })) {
  const models = g.weights.map((w, i) => tinyModel(`m${i}`, { weightPages: w, ttftSloMs: 200 }));
  const c = new Cluster({ numDevices: g.numDevices, budgetPages: 64, models, policy: g.policy,
    config: { roundMs: 50, rateWindowMs: 300, idleEvictMs: 100, tau: g.tau, maxMigrationsPerRound: 2, swapMaxWaitMs: 100, minKvFraction: 0.25 },
    device: { maxBatchSeqs: 2, maxBatchTokens: 32 },
    expectedRates: Object.fromEntries(models.map((m, i) => [m.profile.id, i % 2])), loadMsPerByte: 1e-4, policyOptions: { prism: { maxReplicas: g.maxReplicas } } });
  const arr = g.arrivals.map((a) => ({ atMs: a.atMs, model: `m${a.model % models.length}`, prompt: a.prompt, maxTokens: a.maxTokens })).sort((p, q) => p.atMs - q.atMs);
  c.run(20000, arr);
  for (const [k, v] of Object.entries(c.gs.counters)) tot[`${g.policy}.${k}`] = (tot[`${g.policy}.${k}`] ?? 0) + v;
  let unfinished = 0; for (const [id, s] of c.submitted) if (s.result === "accepted" && !c.sink.finished.has(id)) unfinished++;
  if (unfinished) console.log("UNFINISHED", unfinished, g.policy);
}
console.log(Date.now() - t0, "ms");
console.log(Object.entries(tot).filter(([k, v]) => v > 0 && !k.endsWith("rounds")).map(([k, v]) => `${k}=${v}`).join("  "));
