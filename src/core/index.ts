export * from "./ids.ts";
export * from "./result.ts";
export * from "./clock.ts";
export * from "./rng.ts";
export * from "./errors.ts";
export * from "./records.ts";
