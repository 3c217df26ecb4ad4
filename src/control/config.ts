/**
 * Defaults and validation of the control layer's configuration slice. Called once at the edge
 * (config loader, simulator setup, GlobalScheduler's constructor); the policies trust the result.
 */
import { PrismError } from "../core/errors.ts";
import { DEFAULT_CONTROL_CONFIG, type ControlConfig } from "./types.ts";

const KEYS = Object.keys(DEFAULT_CONTROL_CONFIG) as (keyof ControlConfig)[];

/** Fill defaults, reject unknown keys and bad values, freeze. */
export function resolveControlConfig(partial: Partial<ControlConfig> = {}): ControlConfig {
  for (const k of Object.keys(partial)) {
    if (!(KEYS as string[]).includes(k)) {
      throw new PrismError("PRISM_CONFIG_UNKNOWN_KEY", `unknown control option '${k}' (known: ${KEYS.join(", ")})`, { option: k });
    }
  }
  const c: ControlConfig = { ...DEFAULT_CONTROL_CONFIG, ...partial };
  const bad = (option: string, why: string): PrismError =>
    new PrismError("PRISM_CONFIG_INVALID", `control option ${option}=${String((c as unknown as Record<string, unknown>)[option])}: ${why}`, { option });
  const positive: (keyof ControlConfig)[] = ["roundMs", "rateWindowMs", "violationWindowMs", "loadBytesPerMs", "computeBytesPerMs"];
  for (const k of positive) if (!(c[k] > 0) || !Number.isFinite(c[k])) throw bad(k, "must be a finite number > 0");
  const nonNegative: (keyof ControlConfig)[] = ["tau", "idleEvictMs", "swapMaxWaitMs", "starvationMs"];
  if (!(c.activationStartMs >= 0) || !Number.isFinite(c.activationStartMs)) throw bad("activationStartMs", "must be a finite number ≥ 0");
  for (const k of nonNegative) if (!(c[k] >= 0)) throw bad(k, "must be a number ≥ 0");
  if (!(c.tau < 1)) throw bad("tau", "must be < 1 (a relative improvement)");
  if (!Number.isSafeInteger(c.maxMigrationsPerRound) || c.maxMigrationsPerRound < 0) throw bad("maxMigrationsPerRound", "must be an integer ≥ 0");
  if (!Number.isSafeInteger(c.maxPendingPerModel) || c.maxPendingPerModel < 0) throw bad("maxPendingPerModel", "must be an integer ≥ 0");
  if (!(c.minKvFraction >= 0 && c.minKvFraction < 1)) throw bad("minKvFraction", "must be in [0, 1)");
  return Object.freeze(c);
}
