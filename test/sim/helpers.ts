// Factories shared by the simulator tests.
import { modelId } from "../../src/core/ids.ts";
import { CostModel, type CostModelOptions } from "../../src/sim/cost-model.ts";
import type { ModelArchId } from "../../src/sim/catalog.ts";
import type { SimModel } from "../../src/sim/simulator.ts";
import { traceFromRows, type Trace, type TraceRow } from "../../src/workload/trace-format.ts";

export function makeModels(cm: CostModel, archs: readonly ModelArchId[], slo = { ttftSloMs: 1000, tpotSloMs: 100 }): SimModel[] {
  return archs.map((arch, i) => ({ cost: cm.addModel({ id: modelId(`m${i}`), arch }), ...slo }));
}

export function makeTrace(rows: readonly { t: number; m: number; in: number; out: number }[], numModels: number): Trace {
  const tr: TraceRow[] = rows.map((r) => ({ arrivalS: r.t, model: `m${r.m}`, inputTokens: r.in, outputTokens: r.out }));
  const t = traceFromRows(tr, { sort: true });
  // keep model index i == "m{i}" whatever order the rows named them in
  const names = Array.from({ length: numModels }, (_, i) => `m${i}`);
  const remap = t.modelNames.map((n) => names.indexOf(n));
  const modelIndex = Int32Array.from(t.modelIndex, (k) => remap[k]!);
  return { ...t, modelNames: names, modelIndex };
}

export function costModel(opts: Partial<CostModelOptions> = {}): CostModel {
  return new CostModel({ deviceType: "h100", ...opts });
}
