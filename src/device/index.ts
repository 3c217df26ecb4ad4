// The device layer's public surface: the per-device scheduler (sync core), its async driver, and records.
export * from "./types.ts";
export { DeviceScheduler, type DeviceSchedulerOptions } from "./device-scheduler.ts";
export { DeviceLoop, type DeviceLoopOptions, type LoopHost } from "./loop.ts";
export {
  DEFAULT_DEVICE_SCHEDULER_CONFIG, DEFAULT_MODEL_SERVING_CONFIG, resolveDeviceSchedulerConfig, resolveModelServingConfig,
} from "./config.ts";
export { estimatePrefillMs, latestStartMs } from "./slo-priority.ts";
