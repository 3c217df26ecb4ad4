/**
 * `--models MAP`: which served model each trace model is sent to.
 *   `m0=tiny-a,m1=tiny-b`  explicit; `*=tiny-a` maps every other trace model;
 *   `round-robin`          trace models (in trace order) over the server's /v1/models ids (sorted);
 *   absent                 identity (every trace model name must be served).
 */
import { PrismError } from "../../core/errors.ts";

export function resolveModelMap(spec: string | undefined, traceModels: readonly string[], servedModels: readonly string[]): string[] {
  const served = new Set(servedModels);
  const check = (traceModel: string, id: string): string => {
    if (servedModels.length > 0 && !served.has(id)) {
      throw new PrismError("PRISM_UNKNOWN_MODEL", `--models maps ${traceModel} to '${id}', which the server does not list (served: ${servedModels.join(", ")})`, {
        model: id,
      });
    }
    return id;
  };
  if (spec === undefined || spec.trim() === "" || spec.trim() === "identity") {
    return traceModels.map((m) => check(m, m));
  }
  if (spec.trim() === "round-robin") {
    if (servedModels.length === 0) throw new PrismError("PRISM_CLI_USAGE", "--models round-robin: the server lists no models", {});
    const sorted = [...servedModels].sort();
    return traceModels.map((_, i) => sorted[i % sorted.length]!);
  }
  const map = new Map<string, string>();
  for (const part of spec.split(",")) {
    const p = part.trim();
    if (p === "") continue;
    const eq = p.indexOf("=");
    if (eq <= 0 || eq === p.length - 1) throw new PrismError("PRISM_CLI_USAGE", `--models: bad entry '${p}' (expected TRACE_MODEL=SERVED_MODEL)`, { entry: p });
    map.set(p.slice(0, eq).trim(), p.slice(eq + 1).trim());
  }
  for (const k of map.keys()) {
    if (k !== "*" && !traceModels.includes(k)) throw new PrismError("PRISM_CLI_USAGE", `--models: trace has no model '${k}' (trace models: ${traceModels.join(", ")})`, { model: k });
  }
  return traceModels.map((m) => {
    const id = map.get(m) ?? map.get("*");
    if (id === undefined) throw new PrismError("PRISM_CLI_USAGE", `--models does not map trace model '${m}' (add ${m}=ID or *=ID)`, { model: m });
    return check(m, id);
  });
}
