// The control layer's public surface: the global scheduler, policies by name, the router, the
// cluster-state records the policies plan on, and the demand estimator.
export * from "./types.ts";
export { resolveControlConfig } from "./config.ts";
export { GlobalScheduler, type GlobalSchedulerOptions, type GlobalCounters, type TickReport } from "./global-scheduler.ts";
export { ActionExecutor, type ApplyReport, type ControlCounters, type ExecutorHooks, type FailedAction } from "./executor.ts";
export { Router, NO_DEVICE } from "./router.ts";
export { DemandEstimator, type DemandOptions } from "./demand.ts";
export {
  buildClusterState, modelRecord, kvBytesPerToken, weightsAfter, NO_DEMAND,
  type DeviceSnapshot, type InstanceSnapshot, type ModelRecord,
} from "./cluster-state.ts";
export { usableBytes, type ControlDevice, type DeviceBinding, type MemoryView } from "./device-port.ts";
export { createPolicy, getPolicy, isPolicyName, POLICY_NAMES, type PolicyDefinition, type PolicyName, type PolicyOptions } from "./policies/registry.ts";
export { PrismPolicy, DEFAULT_PRISM_OPTIONS, demandWeights, type PrismOptions } from "./policies/prism.ts";
export { FixedPlacementPolicy, type FixedKind } from "./policies/fixed.ts";
export { SwapPolicy } from "./policies/swap.ts";
export { placeByKvpr, placeMuxServe, fixedQuotas, type Placement, type PlacementDevice, type PlacementModel } from "./placement.ts";
export { PlanLedger } from "./ledger.ts";
