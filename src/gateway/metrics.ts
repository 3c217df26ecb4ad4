/**
 * Prometheus metrics, named the way vLLM users already scrape them (prefix `prism:`).
 * Request histograms are observed when a request ends; gauges are sampled from the backend on scrape.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ServingBackend } from "./backend.ts";

const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80];
const TPOT_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5];

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly ttft: Histogram<"model">;
  readonly tpot: Histogram<"model">;
  readonly e2e: Histogram<"model">;
  readonly requests: Counter<"model" | "status">;
  readonly promptTokens: Counter<"model">;
  readonly generationTokens: Counter<"model">;
  readonly sloAttained: Counter<"model" | "slo">;
  readonly sloMissed: Counter<"model" | "slo">;
  readonly httpRejected: Counter<"code">;

  constructor(backend: ServingBackend) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: "prism_process_" });
    this.ttft = new Histogram({ name: "prism:time_to_first_token_seconds", help: "Time to first token", labelNames: ["model"], buckets: LATENCY_BUCKETS_S, registers: [r] });
    this.tpot = new Histogram({ name: "prism:time_per_output_token_seconds", help: "Time per output token after the first", labelNames: ["model"], buckets: TPOT_BUCKETS_S, registers: [r] });
    this.e2e = new Histogram({ name: "prism:e2e_request_latency_seconds", help: "End-to-end request latency", labelNames: ["model"], buckets: LATENCY_BUCKETS_S, registers: [r] });
    this.requests = new Counter({ name: "prism:request_success_total", help: "Finished requests by outcome", labelNames: ["model", "status"], registers: [r] });
    this.promptTokens = new Counter({ name: "prism:prompt_tokens_total", help: "Prompt tokens processed", labelNames: ["model"], registers: [r] });
    this.generationTokens = new Counter({ name: "prism:generation_tokens_total", help: "Tokens generated", labelNames: ["model"], registers: [r] });
    this.sloAttained = new Counter({ name: "prism:slo_attained_total", help: "Requests that met the SLO", labelNames: ["model", "slo"], registers: [r] });
    this.sloMissed = new Counter({ name: "prism:slo_missed_total", help: "Requests that missed the SLO (failed requests miss)", labelNames: ["model", "slo"], registers: [r] });
    this.httpRejected = new Counter({ name: "prism:http_rejected_total", help: "Requests rejected before generation, by error code", labelNames: ["code"], registers: [r] });

    new Gauge({
      name: "prism:num_requests_running", help: "Requests running (prefill or decode)", labelNames: ["model"], registers: [r],
      collect() {
        this.reset();
        for (const [m, v] of backend.metricsSnapshot().running) this.set({ model: m }, v);
      },
    });
    new Gauge({
      name: "prism:num_requests_waiting", help: "Requests queued", labelNames: ["model"], registers: [r],
      collect() {
        this.reset();
        for (const [m, v] of backend.metricsSnapshot().waiting) this.set({ model: m }, v);
      },
    });
    new Gauge({
      name: "prism:kv_pages_used", help: "KV pages mapped per model and device", labelNames: ["model", "device"], registers: [r],
      collect() {
        this.reset();
        for (const k of backend.metricsSnapshot().kvPagesUsed) this.set({ model: k.model, device: String(k.device) }, k.pages);
      },
    });
    new Gauge({
      name: "prism:device_memory_bytes", help: "Device memory by kind (weights, kv, free, headroom)", labelNames: ["device", "kind"], registers: [r],
      collect() {
        this.reset();
        for (const d of backend.metricsSnapshot().deviceMemoryBytes) this.set({ device: String(d.device), kind: d.kind }, d.bytes);
      },
    });
    // Counters owned by the schedulers; exposed as counters whose value is read on scrape.
    const mirrored = (name: string, help: string, read: () => number): void => {
      let last = 0;
      new Counter({
        name, help, registers: [r],
        collect() {
          const v = read();
          if (v > last) this.inc(v - last);
          last = v;
        },
      });
    };
    mirrored("prism:model_activations_total", "Model activations (weights loaded onto a device)", () => backend.metricsSnapshot().activations);
    mirrored("prism:model_evictions_total", "Model evictions (weights removed from a device)", () => backend.metricsSnapshot().evictions);
    mirrored("prism:migrations_total", "Model migrations between devices", () => backend.metricsSnapshot().migrations);
  }
}
