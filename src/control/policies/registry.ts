/**
 * Policies by name. All of them plan through the same ledger, cluster state and executor, so they
 * are compared on equal terms; each declares the device-level configuration it needs (`needs`).
 */
import { PrismError } from "../../core/errors.ts";
import { resolveControlConfig } from "../config.ts";
import type { ControlConfig, DeviceNeeds, Policy } from "../types.ts";
import { FixedPlacementPolicy, fixedNeeds } from "./fixed.ts";
import { PRISM_NEEDS, PrismPolicy, type PrismOptions } from "./prism.ts";
import { SWAP_NEEDS, SwapPolicy } from "./swap.ts";

export const POLICY_NAMES = ["prism", "static", "swap", "muxserve", "elastic"] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export interface PolicyOptions {
  /** Only `prism` reads these. */
  readonly prism?: Partial<PrismOptions>;
}

export interface PolicyDefinition {
  readonly name: PolicyName;
  readonly summary: string;
  /** What the device schedulers must be configured with (same as create().needs). */
  readonly needs: DeviceNeeds;
  create(config?: Partial<ControlConfig>, options?: PolicyOptions): Policy;
}

const full = (c: Partial<ControlConfig> | undefined): ControlConfig => resolveControlConfig(c);

const DEFINITIONS: Readonly<Record<PolicyName, PolicyDefinition>> = {
  prism: {
    name: "prism",
    summary: "KVPR placement with τ hysteresis, activation on demand, idle eviction, elastic KV, SLO local order",
    needs: PRISM_NEEDS,
    create: (c, o) => new PrismPolicy(full(c), o?.prism ?? {}),
  },
  static: {
    name: "static",
    summary: "placed once by expected rate, fixed KV quota ∝ rate × KV bytes/token, FCFS",
    needs: fixedNeeds("static"),
    create: (c) => new FixedPlacementPolicy("static", full(c)),
  },
  swap: {
    name: "swap",
    summary: "one model per device, swap on demand (LRU), FCFS",
    needs: SWAP_NEEDS,
    create: (c) => new SwapPolicy(full(c)),
  },
  muxserve: {
    name: "muxserve",
    summary: "MuxServe greedy placement by rate × size, fixed KV quota ∝ rate in a unified pool, FCFS",
    needs: fixedNeeds("muxserve"),
    create: (c) => new FixedPlacementPolicy("muxserve", full(c)),
  },
  elastic: {
    name: "elastic",
    summary: "kvcached alone: static placement, elastic KV, FCFS",
    needs: fixedNeeds("elastic"),
    create: (c) => new FixedPlacementPolicy("elastic", full(c)),
  },
};

export function isPolicyName(name: string): name is PolicyName {
  return Object.hasOwn(DEFINITIONS, name);
}

/** The policy definition named `name`; throws PRISM_UNKNOWN_POLICY otherwise. */
export function getPolicy(name: string): PolicyDefinition {
  if (!isPolicyName(name)) {
    throw new PrismError("PRISM_UNKNOWN_POLICY", `unknown scheduling policy '${name}' (known: ${POLICY_NAMES.join(", ")})`, {
      policy: name, known: [...POLICY_NAMES],
    });
  }
  return DEFINITIONS[name];
}

/** Shorthand: getPolicy(name).create(config, options). */
export function createPolicy(name: string, config?: Partial<ControlConfig>, options?: PolicyOptions): Policy {
  return getPolicy(name).create(config, options);
}
