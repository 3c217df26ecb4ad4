// `npm run bench:memory`: KV block alloc+free pairs per second on the hot path (a partial page or a
// reserved page is there) and on the slow path (a device page is mapped each time), heap growth per
// operation in steady state, and the cost of accounting-only devices for the simulator.
// Prints medians over RUNS runs. Numbers depend on the (shared, 2-core) machine; compare rows taken
// side by side only.
import { PerformanceObserver, performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { DeviceMemory, type KvSpace } from "../src/memory/index.ts";
import { modelId } from "../src/core/ids.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const PAGE = 64 * 1024;
// stories260K-like geometry: 256 B K+V per token per layer, 5 layers, 16-token blocks = 20 KiB → 3 per page.
const GEOM = { bytesPerTokenPerLayer: 256, numLayers: 5, blockTokens: 16 };

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function device(reservedPages: number): { dm: DeviceMemory; kv: KvSpace } {
  const dm = new DeviceMemory({
    budgetBytes: 256 * PAGE, pageBytes: PAGE, backed: true, kvHeadroomFraction: 0,
    minReservedPages: 0, maxReservedPages: reservedPages,
  });
  return { dm, kv: dm.createKvSpace(modelId("bench"), GEOM) };
}

/** pairs per second of allocInto(batch) + free(batch), `iters` times. */
function pairsPerSecond(kv: KvSpace, batch: number, iters: number): number {
  const out = new Int32Array(batch);
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) {
    if (!kv.allocInto(batch, out, 0)) throw new Error("bench: out of memory");
    kv.free(out, 0, batch);
  }
  const seconds = (performance.now() - t0) / 1000;
  return (iters * batch) / seconds;
}

interface Case {
  readonly name: string;
  readonly iters: number;
  readonly batch: number;
  readonly setup: () => KvSpace;
}

const cases: Case[] = [
  {
    name: "hot: partial page (1 block)",
    iters: 2_000_000,
    batch: 1,
    setup: () => {
      const { kv } = device(0);
      kv.alloc(1); // pins a partially used page
      return kv;
    },
  },
  { name: "hot: reserved page (1 block)", iters: 2_000_000, batch: 1, setup: () => device(4).kv },
  { name: "slow: map a device page (1 block)", iters: 1_000_000, batch: 1, setup: () => device(0).kv },
  {
    name: "hot: batch of 16 blocks, partial pages",
    iters: 200_000,
    batch: 16,
    setup: () => {
      const { kv } = device(0);
      kv.alloc(18 * 3 - 2); // 18 pages, 2 free slots; a 16-block batch carves 14 fresh pages' worth
      return kv;
    },
  },
];

const rows: string[][] = [["case", "median Mpairs/s", "min", "max", "runs"]];
for (const c of cases) {
  const kv = c.setup();
  pairsPerSecond(kv, c.batch, Math.min(c.iters, 200_000)); // warm-up (JIT)
  const rates: number[] = [];
  for (let r = 0; r < RUNS; r++) rates.push(pairsPerSecond(kv, c.batch, c.iters));
  rows.push([c.name, (median(rates) / 1e6).toFixed(2), (Math.min(...rates) / 1e6).toFixed(2), (Math.max(...rates) / 1e6).toFixed(2), String(RUNS)]);
}

// Heap growth per pair in steady state: heapUsed before/after 10M hot pairs with no forced
// collection in between (any allocation on the path shows up as growth). GCs whose start falls
// inside the loop are counted too: a zero-allocation loop triggers none.
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}
const gcStarts: number[] = [];
const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcStarts.push(e.startTime);
});
obs.observe({ entryTypes: ["gc"] });
const heapRows: string[][] = [["case (10M pairs)", "heap growth B/pair", "GCs during loop"]];
for (const c of cases.slice(0, 3)) {
  const kv = c.setup();
  pairsPerSecond(kv, 1, 200_000);
  await settle();
  const h0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  pairsPerSecond(kv, 1, 10_000_000);
  const t1 = performance.now();
  const h1 = process.memoryUsage().heapUsed;
  await settle();
  const gcs = gcStarts.filter((t) => t >= t0 && t <= t1).length;
  heapRows.push([c.name, ((h1 - h0) / 10_000_000).toFixed(4), String(gcs)]);
}
obs.disconnect();

// The simulator: many accounting-only 80 GB devices (no bytes behind them).
const simRows: string[][] = [["1000 accounting-only 80 GB devices, 4 KV spaces each", "median ms", "max retained MB"]];
for (const pageBytes of [2 ** 21, 2 ** 27]) {
  const times: number[] = [];
  let retainedMb = 0;
  for (let r = 0; r < Math.min(RUNS, 5); r++) {
    await settle();
    const mem0 = process.memoryUsage();
    const t0 = performance.now();
    const devices: DeviceMemory[] = [];
    for (let i = 0; i < 1000; i++) {
      const dm = new DeviceMemory({ budgetBytes: 80 * 2 ** 30, pageBytes, backed: false });
      // 8B-class model: 4 KiB K+V per token per layer, 32 layers; a block fills one page.
      for (let m = 0; m < 4; m++) dm.createKvSpace(modelId(`m${m}`), { bytesPerTokenPerLayer: 4096, numLayers: 32, blockTokens: pageBytes / (32 * 4096) });
      devices.push(dm);
    }
    times.push(performance.now() - t0);
    await settle();
    const mem1 = process.memoryUsage();
    if (devices.length !== 1000) throw new Error("unreachable");
    retainedMb = Math.max(retainedMb, (mem1.heapUsed + mem1.arrayBuffers - mem0.heapUsed - mem0.arrayBuffers) / 2 ** 20);
    devices.length = 0; // so the next run's baseline does not include these
  }
  simRows.push([`${pageBytes / 2 ** 20} MiB pages (${(80 * 2 ** 30) / pageBytes} per device)`, median(times).toFixed(0), retainedMb.toFixed(1)]);
}

function print(table: string[][]): void {
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  for (const [k, row] of table.entries()) {
    console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  "));
    if (k === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
  }
  console.log();
}

console.log(`prism memory bench — node ${process.version}, ${RUNS} runs, 64 KiB pages, 20 KiB blocks (3 per page)\n`);
print(rows);
print(heapRows);
print(simRows);
