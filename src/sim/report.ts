/**
 * `prism sim --report out.html`: one self-contained HTML file (echarts inlined, no network) with
 *   - SLO attainment vs request-rate scale, one line per policy (TTFT and both),
 *   - SLO attainment vs SLO scale, one line per policy,
 *   - devices needed per policy (bars) against the fluid lower bound,
 *   - devices needed vs request-rate or SLO scale, one line per policy, with the fluid lower bound,
 *   - per policy run: timelines of resident models per device and of KV memory per device.
 * Only plain data goes in; this module does no simulation.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

export interface SweepSeries {
  readonly policy: string;
  /** x = rate scale or SLO scale. */
  readonly points: readonly { readonly x: number; readonly ttft: number; readonly tpot: number; readonly both: number }[];
}

export interface DevicesNeeded {
  readonly policy: string;
  /** null = target not reached within the search range. */
  readonly devices: number | null;
}

/** Devices needed at each point of a rate or SLO sweep. */
export interface DevicesSweep {
  readonly xName: string;
  readonly series: readonly { readonly policy: string; readonly points: readonly { readonly x: number; readonly devices: number | null }[] }[];
  readonly lowerBound?: readonly { readonly x: number; readonly devices: number }[];
}

/** Residency interval of one model on one device. */
export interface ResidencySpan {
  readonly device: number;
  readonly model: string;
  readonly fromS: number;
  readonly toS: number;
}

export interface Timeline {
  readonly policy: string;
  readonly devices: number;
  /** Sample times (s). */
  readonly tS: readonly number[];
  /** kvBytes[device][sample]. */
  readonly kvBytes: readonly (readonly number[])[];
  /** weightBytes[device][sample]. */
  readonly weightBytes: readonly (readonly number[])[];
  readonly residency: readonly ResidencySpan[];
}

export interface SimReportData {
  readonly title: string;
  /** Free-form lines shown under the title (workload, device type, seeds, commands). */
  readonly notes?: readonly string[];
  readonly rateSweep?: readonly SweepSeries[];
  readonly sloSweep?: readonly SweepSeries[];
  readonly devicesNeeded?: readonly DevicesNeeded[];
  readonly lowerBound?: number;
  readonly devicesSweep?: DevicesSweep;
  readonly timelines?: readonly Timeline[];
  /** A table (e.g. the bench summary): header + rows. */
  readonly table?: { readonly header: readonly string[]; readonly rows: readonly (readonly (string | number)[])[] };
}

function echartsSource(): string {
  const require = createRequire(import.meta.url);
  const path = require.resolve("echarts/dist/echarts.min.js");
  return readFileSync(path, "utf8");
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** JSON safe to embed in a <script> element. */
function embed(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c");
}

interface ChartSpec {
  readonly id: string;
  readonly title: string;
  readonly height: number;
  readonly option: unknown;
}

function sweepChart(id: string, title: string, xName: string, series: readonly SweepSeries[]): ChartSpec {
  const lines: unknown[] = [];
  for (const s of series) {
    lines.push({ name: `${s.policy} TTFT`, type: "line", data: s.points.map((p) => [p.x, p.ttft * 100]) });
    lines.push({ name: `${s.policy} both`, type: "line", lineStyle: { type: "dashed" }, data: s.points.map((p) => [p.x, p.both * 100]) });
  }
  return {
    id,
    title,
    height: 380,
    option: {
      tooltip: { trigger: "axis" },
      legend: { type: "scroll", top: 0 },
      grid: { top: 50, left: 60, right: 30, bottom: 50 },
      xAxis: { type: "value", name: xName, nameLocation: "middle", nameGap: 30, scale: true },
      yAxis: { type: "value", name: "SLO attainment (%)", min: 0, max: 100 },
      series: lines,
    },
  };
}

function devicesChart(needed: readonly DevicesNeeded[], lowerBound: number | undefined): ChartSpec {
  return {
    id: "devices",
    title: "Devices needed to reach the attainment target",
    height: 320,
    option: {
      tooltip: {},
      grid: { top: 30, left: 60, right: 30, bottom: 40 },
      xAxis: { type: "category", data: needed.map((d) => d.policy) },
      yAxis: { type: "value", name: "devices" },
      series: [
        {
          type: "bar",
          data: needed.map((d) => d.devices),
          label: { show: true, position: "top" },
          ...(lowerBound !== undefined
            ? { markLine: { symbol: "none", data: [{ yAxis: lowerBound, name: "fluid lower bound" }], label: { formatter: `lower bound ${lowerBound}` } } }
            : {}),
        },
      ],
    },
  };
}

function devicesSweepChart(d: DevicesSweep): ChartSpec {
  const lines: unknown[] = d.series.map((s) => ({ name: s.policy, type: "line", data: s.points.map((p) => [p.x, p.devices]) }));
  if (d.lowerBound) lines.push({ name: "fluid lower bound", type: "line", lineStyle: { type: "dotted" }, data: d.lowerBound.map((p) => [p.x, p.devices]) });
  return {
    id: "devsweep",
    title: `Devices needed vs ${d.xName} (a gap: target not reached within the search range)`,
    height: 360,
    option: {
      tooltip: { trigger: "axis" },
      legend: { type: "scroll", top: 0 },
      grid: { top: 50, left: 60, right: 30, bottom: 50 },
      xAxis: { type: "value", name: d.xName, nameLocation: "middle", nameGap: 30, scale: true },
      yAxis: { type: "value", name: "devices", minInterval: 1 },
      series: lines,
    },
  };
}

function timelineCharts(t: Timeline, k: number): ChartSpec[] {
  const models = [...new Set(t.residency.map((r) => r.model))].sort();
  const idx = new Map(models.map((m, i) => [m, i]));
  // residency as horizontal segments: y = model, colour = device (one line series per device)
  const perDevice: unknown[][] = Array.from({ length: t.devices }, () => []);
  for (const r of t.residency) {
    const y = idx.get(r.model)!;
    perDevice[r.device]!.push([r.fromS, y], [r.toS, y], null);
  }
  const residency: ChartSpec = {
    id: `res${k}`,
    title: `${t.policy}, ${t.devices} devices: resident models (line = model resident on the device of its colour)`,
    height: Math.max(240, 14 * models.length + 80),
    option: {
      tooltip: { trigger: "item", formatter: "{a}" },
      legend: { type: "scroll", top: 0 },
      grid: { top: 40, left: 120, right: 30, bottom: 40 },
      xAxis: { type: "value", name: "time (s)", nameLocation: "middle", nameGap: 25 },
      yAxis: { type: "category", data: models },
      series: perDevice.map((data, d) => ({ name: `device ${d}`, type: "line", showSymbol: false, connectNulls: false, lineStyle: { width: 6 }, data })),
    },
  };
  const gib = 2 ** 30;
  const kv: ChartSpec = {
    id: `kv${k}`,
    title: `${t.policy}, ${t.devices} devices: KV memory (solid) and weights (dotted) per device, GiB`,
    height: 340,
    option: {
      tooltip: { trigger: "axis" },
      legend: { type: "scroll", top: 0 },
      grid: { top: 40, left: 60, right: 30, bottom: 40 },
      xAxis: { type: "value", name: "time (s)", nameLocation: "middle", nameGap: 25 },
      yAxis: { type: "value", name: "GiB" },
      series: [
        ...t.kvBytes.map((row, d) => ({ name: `device ${d} KV`, type: "line", showSymbol: false, data: row.map((b, i) => [t.tS[i], b / gib]) })),
        ...t.weightBytes.map((row, d) => ({ name: `device ${d} weights`, type: "line", showSymbol: false, lineStyle: { type: "dotted" }, data: row.map((b, i) => [t.tS[i], b / gib]) })),
      ],
    },
  };
  return [residency, kv];
}

/** The whole report as one HTML string. */
export function renderSimReport(data: SimReportData): string {
  const charts: ChartSpec[] = [];
  if (data.rateSweep && data.rateSweep.length > 0) charts.push(sweepChart("rate", "SLO attainment vs request-rate scale (solid: TTFT, dashed: TTFT and TPOT)", "rate scale", data.rateSweep));
  if (data.sloSweep && data.sloSweep.length > 0) charts.push(sweepChart("slo", "SLO attainment vs SLO scale (solid: TTFT, dashed: TTFT and TPOT)", "SLO scale", data.sloSweep));
  if (data.devicesNeeded && data.devicesNeeded.length > 0) charts.push(devicesChart(data.devicesNeeded, data.lowerBound));
  if (data.devicesSweep && data.devicesSweep.series.length > 0) charts.push(devicesSweepChart(data.devicesSweep));
  (data.timelines ?? []).forEach((t, k) => charts.push(...timelineCharts(t, k)));
  const table = data.table
    ? `<table><thead><tr>${data.table.header.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${data.table.rows
        .map((r) => `<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join("")}</tr>`)
        .join("")}</tbody></table>`
    : "";
  const divs = charts.map((c) => `<h2>${esc(c.title)}</h2><div id="${c.id}" style="height:${c.height}px"></div>`).join("\n");
  const notes = (data.notes ?? []).map((n) => `<li>${esc(n)}</li>`).join("");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(data.title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px}h2{font-size:15px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style>
<script>${echartsSource()}</script></head>
<body><h1>${esc(data.title)}</h1><ul>${notes}</ul>${table}
${divs}
<script>const CHARTS=${embed(charts.map((c) => ({ id: c.id, option: c.option })))};
for (const c of CHARTS) echarts.init(document.getElementById(c.id)).setOption(c.option);</script>
</body></html>
`;
}
