import { test } from "node:test";
import assert from "node:assert/strict";
import { NO_DEVICE, Router } from "../../src/control/router.ts";

test("router: no replica → NO_DEVICE; active beats activating; least outstanding work; ties to the lower index", () => {
  const r = new Router(2, 4, 4);
  assert.equal(r.route(0), NO_DEVICE);
  r.addReplica(0, 2, false);
  assert.equal(r.route(0), 2); // activating replicas take requests (the pending activation)
  r.addReplica(0, 3, true);
  assert.equal(r.route(0), 3);
  r.addReplica(0, 1, true);
  assert.equal(r.route(0), 1); // equal load: lower index
  r.addLoad(1, 100);
  assert.equal(r.route(0), 3);
  r.addLoad(3, 200);
  assert.equal(r.route(0), 1);
  r.markActive(0, 2);
  assert.equal(r.route(0), 2); // load 0
  r.removeReplica(0, 2);
  assert.equal(r.route(0), 1);
  assert.deepEqual([r.isReplica(0, 1), r.isReplica(0, 2), r.isReplica(0, 3), r.replicas(0)], [true, false, true, 2]);
  r.addLoad(1, -100);
  assert.equal(r.load(1), 0);
  assert.equal(r.route(1), NO_DEVICE);
});

test("router: re-adding a replica updates it in place; more than maxReplicas is a bug", () => {
  const r = new Router(1, 3, 2);
  r.addReplica(0, 0, false);
  r.addReplica(0, 0, true);
  assert.equal(r.replicas(0), 1);
  r.addReplica(0, 1, true);
  assert.throws(() => r.addReplica(0, 2, true), (e: unknown) => (e as { code?: string }).code === "PRISM_INTERNAL");
  r.removeReplica(0, 2); // not a replica: no-op
  assert.equal(r.replicas(0), 2);
});
