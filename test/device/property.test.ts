// Property: random arrivals, cancels, unload requests and clock jumps across several models, under
// tight memory (preemption, eviction, keep-alive) → every accepted request ends exactly once with
// the tokens a lone run would give (or a prefix, when cancelled / failed), nothing is lost or served
// twice, every KV block is free at the end, and the device quiesces within a bounded number of actions.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { assertAllKvFree, drive, makeProfile, makeRequest, makeScheduler, PAGE_BYTES } from "../helpers/device-harness.ts";
import { fakeReference } from "../helpers/fake-executor.ts";
import { modelId, requestId } from "../../src/core/ids.ts";
import type { SubmitRequest } from "../../src/device/types.ts";

type Cmd =
  | { kind: "submit"; model: number; prompt: number; maxTokens: number; arrivalBackMs: number; stopAt: number }
  | { kind: "cancel"; pick: number }
  | { kind: "run"; n: number }
  | { kind: "advance"; ms: number }
  | { kind: "unload"; model: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("submit" as const), model: fc.nat(2), prompt: fc.integer({ min: 1, max: 150 }), maxTokens: fc.integer({ min: 1, max: 150 }), arrivalBackMs: fc.nat(400), stopAt: fc.integer({ min: -1, max: 30 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("run" as const), n: fc.integer({ min: 1, max: 12 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.nat(300) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("unload" as const), model: fc.nat(2) }) },
);

const setup = fc.record({
  budgetPages: fc.constantFrom(12, 14, 20, 64),
  policy: fc.constantFrom("slo" as const, "fcfs" as const),
  abortUnreachable: fc.boolean(),
  demoteExpired: fc.boolean(),
  lateMaxRunning: fc.constantFrom(1, 2, 8),
  lateMaxWaitMs: fc.constantFrom(50, 400, Number.POSITIVE_INFINITY),
  keepAliveMs: fc.constantFrom(0, 40, Number.POSITIVE_INFINITY),
  maxBatchSeqs: fc.integer({ min: 1, max: 8 }),
  pinFirst: fc.boolean(),
  decodeMarginTokens: fc.constantFrom(0, 4, 20),
});

const MODELS = ["m0", "m1", "m2"];
const WEIGHT_PAGES = [3, 4, 5];

test("random workloads: exactly-once outcomes, correct tokens, no leaked blocks, no deadlock", () => {
  fc.assert(
    fc.property(setup, fc.array(cmd, { minLength: 1, maxLength: 40 }), (s, cmds) => {
      const profiles = MODELS.map((name, i) => makeProfile(name, { weightBytes: WEIGHT_PAGES[i]! * PAGE_BYTES, eosTokenIds: i === 0 ? [7] : [100_000] }));
      const h = makeScheduler({
        budgetPages: s.budgetPages,
        config: { policy: s.policy, abortUnreachable: s.abortUnreachable, demoteExpired: s.demoteExpired, lateMaxRunning: s.lateMaxRunning, lateMaxWaitMs: s.lateMaxWaitMs, maxBatchSeqs: s.maxBatchSeqs, decodeMarginTokens: s.decodeMarginTokens, maxBatchTokens: 48, prefillChunkTokens: 24 },
        exec: { profiles, loadMsPerByte: 0.0001 },
      });
      profiles.forEach((p, i) => h.sched.addModel(p, { keepAliveMs: s.keepAliveMs, ttftSloMs: 200 + 100 * i, pinned: s.pinFirst && i === 0 }));
      const accepted: SubmitRequest[] = [];
      const stops = new Map<number, number[]>();
      let nextId = 1;
      for (const c of cmds) {
        switch (c.kind) {
          case "submit": {
            const id = nextId++;
            const req = makeRequest(h, { id, model: MODELS[c.model]!, prompt: c.prompt, maxTokens: c.maxTokens, arrivalMs: h.clock.nowMs() - c.arrivalBackMs });
            const ref = fakeReference(req.modelId, req.promptTokens, c.maxTokens, 256);
            const stopIds = c.stopAt >= 0 && c.stopAt < ref.length ? [ref[c.stopAt]!] : [];
            const spec = stopIds.length > 0 ? { ...req, stopTokenIds: stopIds } : req;
            const r = h.sched.submit(spec);
            if (r === "accepted") {
              accepted.push(spec);
              stops.set(id, [...stopIds, ...(c.model === 0 ? [7] : [])]);
            } else if (r !== "busy") {
              assert.ok(["PRISM_REQUEST_TOO_LARGE", "PRISM_PROMPT_TOO_LONG"].includes(r.code), r.code);
            }
            break;
          }
          case "cancel":
            if (accepted.length > 0) h.sched.cancel(accepted[c.pick % accepted.length]!.requestId);
            break;
          case "run":
            drive(h, { before: (i) => i < c.n, followWake: false });
            break;
          case "advance":
            h.clock.advance(c.ms);
            break;
          case "unload": {
            const r = h.sched.requestUnload(modelId(MODELS[c.model]!));
            if (typeof r !== "string") assert.equal(r.code, "PRISM_MODEL_BUSY");
            break;
          }
        }
      }
      drive(h, { maxActions: 50_000 });
      assert.ok(h.sched.isQuiescent);
      assert.equal(h.sched.numQueued + h.sched.numRunning, 0);
      for (const spec of accepted) {
        const id = spec.requestId;
        assert.equal(h.sink.finishCount.get(id), 1, `request ${id} finished ${h.sink.finishCount.get(id) ?? 0} times`);
        const out = h.sink.outcomeOf(id);
        const ref = fakeReference(spec.modelId, spec.promptTokens, spec.maxTokens, 256, stops.get(id)!);
        const got = h.sink.tokens.get(id) ?? [];
        if (out.startsWith("finished")) {
          assert.deepEqual(got, ref, `request ${id} (${out})`);
          assert.equal(out, ref.length < spec.maxTokens ? "finished:stop" : "finished:length");
        } else {
          assert.deepEqual(got, ref.slice(0, got.length), `request ${id} (${out}) streamed a non-prefix`);
          if (out.startsWith("failed")) {
            const allowed = ["failed:PRISM_REQUEST_TOO_LARGE", "failed:PRISM_MODEL_TOO_LARGE", ...(s.abortUnreachable || (s.demoteExpired && s.policy === "slo" && s.lateMaxWaitMs < Infinity) ? ["failed:PRISM_SLO_UNREACHABLE"] : [])];
            assert.ok(allowed.includes(out), `request ${id}: ${out}`);
          } else {
            assert.equal(out, "cancelled");
          }
        }
      }
      assert.equal(h.sink.finishCount.size, accepted.length, "no finish for a request that was not accepted");
      assertAllKvFree(h);
      const st = h.sched.stats();
      assert.equal(st.numFinished + st.numCancelled + st.numFailed, accepted.length);
      // Resident weights never exceed the budget, and nothing runs on a model that is not loaded.
      for (const m of st.models) assert.equal(h.exec.loaded.has(modelId(m.modelId)), m.residency === "resident");
      void requestId;
    }),
    { numRuns: 120, seed: 4242 },
  );
});

test("random bursts on one model under heavy KV pressure: preempted and recomputed requests keep exact tokens", () => {
  let totalPreemptions = 0;
  fc.assert(
    fc.property(
      fc.integer({ min: 6, max: 10 }),
      fc.array(fc.record({ prompt: fc.integer({ min: 1, max: 120 }), maxTokens: fc.integer({ min: 1, max: 200 }), cancelAfterSteps: fc.integer({ min: -1, max: 60 }) }), { minLength: 2, maxLength: 14 }),
      fc.integer({ min: 1, max: 12 }),
      fc.constantFrom(0, 20),
      (budgetPages, reqs, maxBatchSeqs, decodeMarginTokens) => {
        const h = makeScheduler({ budgetPages, config: { maxBatchSeqs, maxBatchTokens: 64, prefillChunkTokens: 32, decodeMarginTokens } });
        h.sched.addModel(makeProfile("a", { weightBytes: 2 * PAGE_BYTES }));
        const specs = reqs.map((r, i) => makeRequest(h, { id: i + 1, model: "a", prompt: r.prompt, maxTokens: r.maxTokens }));
        const accepted = specs.filter((sp) => h.sched.submit(sp) === "accepted");
        let step = 0;
        drive(h, {
          maxActions: 50_000,
          after: (a) => {
            if (a.kind !== "step") return;
            step++;
            reqs.forEach((r, i) => {
              if (r.cancelAfterSteps === step) h.sched.cancel(requestId(i + 1));
            });
          },
        });
        totalPreemptions += h.sched.stats().numPreemptions;
        for (const spec of accepted) {
          const id = spec.requestId;
          assert.equal(h.sink.finishCount.get(id), 1);
          const ref = fakeReference("a", spec.promptTokens, spec.maxTokens, 256);
          const got = h.sink.tokens.get(id) ?? [];
          const out = h.sink.outcomeOf(id);
          if (out === "cancelled") assert.deepEqual(got, ref.slice(0, got.length));
          else if (out === "finished:length") assert.deepEqual(got, ref);
          else assert.equal(out, "failed:PRISM_REQUEST_TOO_LARGE");
        }
        assertAllKvFree(h);
      },
    ),
    { numRuns: 80, seed: 77 },
  );
  assert.ok(totalPreemptions > 5, `only ${totalPreemptions} preemptions: the property does not stress memory`);
});
