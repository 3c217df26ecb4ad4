/**
 * `renderReport({ title, runs })`: one self-contained HTML page (echarts inlined, works offline) comparing runs
 * side by side — a `prism bench` run, simulator runs per policy, bench:sharing configurations:
 *   - summary table (attainment, goodput, TTFT/TPOT percentiles) and per-model tables;
 *   - TTFT and TPOT CDFs, one line per run;
 *   - SLO attainment (both) per model, one bar per run;
 *   - KV pages per model over time, one chart per run that has samples.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { type EvaluateOptions, type GroupReport, type RequestOutcomes, type SloReport, type SloSpec, computeRequestMetrics, evaluateSlo, resolveSlos } from "../slo.ts";
import { ecdfPoints, sortedFinite } from "../stats.ts";

export interface KvSample {
  /** Ms since the run's origin. */
  readonly tMs: number;
  readonly kvPagesByModel: Readonly<Record<string, number>>;
}

export interface ReportRun {
  /** Legend label: policy, configuration, "bench". */
  readonly name: string;
  readonly outcomes: RequestOutcomes;
  readonly slo: SloSpec;
  /** Precomputed report (else evaluateSlo(outcomes, slo, { durationS })). */
  readonly report?: SloReport;
  readonly durationS?: number;
  readonly kvSamples?: readonly KvSample[];
  /** Extra key/values shown under the run (parameters, send lateness, warnings). */
  readonly details?: Readonly<Record<string, string | number>>;
}

export interface ReportInput {
  readonly title: string;
  /** Free text under the title (how the runs were made). */
  readonly description?: string;
  readonly runs: readonly ReportRun[];
  /** Default true; false leaves a <script src> to a CDN-less relative echarts.min.js (smaller, for tests). */
  readonly inlineEcharts?: boolean;
}

let echartsSource: string | null = null;
function echartsJs(): string {
  if (echartsSource === null) {
    const require = createRequire(import.meta.url);
    echartsSource = readFileSync(require.resolve("echarts/dist/echarts.min.js"), "utf8");
  }
  return echartsSource;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** JSON safe to embed in a <script> element. */
const jsonForScript = (x: unknown): string => JSON.stringify(x).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
const fmt = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : "–");
const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : "–");
const sloText = (g: GroupReport): string => (g.slo ? `${fmt(g.slo.ttftMs, 0)} / ${fmt(g.slo.tpotMs, 0)}` : "per model");

interface PreparedRun {
  readonly name: string;
  readonly report: SloReport;
  readonly ttftCdf: Array<[number, number]>;
  readonly tpotCdf: Array<[number, number]>;
  readonly kv: { models: string[]; tS: number[]; series: number[][] } | null;
  readonly details: Readonly<Record<string, string | number>>;
}

function prepare(run: ReportRun): PreparedRun {
  const opts: EvaluateOptions = run.durationS !== undefined ? { durationS: run.durationS } : {};
  const report = run.report ?? evaluateSlo(run.outcomes, run.slo, opts);
  const o = run.outcomes;
  const m = computeRequestMetrics(o, resolveSlos(run.slo, o.modelNames));
  const okTtft = new Float64Array(o.count).fill(NaN);
  for (let i = 0; i < o.count; i++) if (o.ok[i] === 1) okTtft[i] = o.ttftMs[i]!;
  let kv: PreparedRun["kv"] = null;
  // samples taken during setup (before the trace's t = 0) are not plotted
  const samples = (run.kvSamples ?? []).filter((s) => s.tMs >= 0);
  if (samples.length > 0) {
    const models = [...new Set(samples.flatMap((s) => Object.keys(s.kvPagesByModel)))].sort();
    kv = {
      models,
      tS: samples.map((s) => s.tMs / 1000),
      series: models.map((md) => samples.map((s) => s.kvPagesByModel[md] ?? 0)),
    };
  }
  return {
    name: run.name,
    report,
    ttftCdf: ecdfPoints(sortedFinite(okTtft), 300),
    tpotCdf: ecdfPoints(sortedFinite(m.tpotMs), 300),
    kv,
    details: run.details ?? {},
  };
}

function summaryRow(name: string, g: GroupReport): string {
  const c = [
    esc(name),
    String(g.count),
    String(g.completed),
    String(g.failed),
    sloText(g),
    pct(g.ttftAttainment),
    pct(g.tpotAttainment),
    pct(g.bothAttainment),
    fmt(g.goodputRps, 2),
    fmt(g.throughputRps, 2),
    fmt(g.ttftMs.p50, 0),
    fmt(g.ttftMs.p90, 0),
    fmt(g.ttftMs.p99, 0),
    fmt(g.tpotMs.p50, 1),
    fmt(g.tpotMs.p90, 1),
    fmt(g.tpotMs.p99, 1),
  ];
  return `<tr>${c.map((x, i) => (i === 0 ? `<th>${x}</th>` : `<td>${x}</td>`)).join("")}</tr>`;
}

const SUMMARY_HEAD =
  "<tr><th></th><th>requests</th><th>done</th><th>failed</th><th>SLO ttft/tpot ms</th><th>TTFT ok</th><th>TPOT ok</th><th>both ok</th>" +
  "<th>goodput/s</th><th>thruput/s</th><th>TTFT p50</th><th>p90</th><th>p99</th><th>TPOT p50</th><th>p90</th><th>p99</th></tr>";

/** The page as a string. */
export function renderReport(input: ReportInput): string {
  const runs = input.runs.map(prepare);
  const modelSet: string[] = [];
  for (const r of runs) for (const g of r.report.perModel) if (!modelSet.includes(g.name)) modelSet.push(g.name);
  const attainment = runs.map((r) => ({
    name: r.name,
    values: modelSet.map((md) => {
      const g = r.report.perModel.find((x) => x.name === md);
      return g && g.count > 0 ? Math.round(g.bothAttainment * 1000) / 10 : null;
    }),
  }));
  const data = {
    runs: runs.map((r) => ({ name: r.name, ttft: r.ttftCdf, tpot: r.tpotCdf, kv: r.kv })),
    models: modelSet,
    attainment,
  };
  const overallTable = `<table><thead>${SUMMARY_HEAD}</thead><tbody>${runs.map((r) => summaryRow(r.name, r.report.overall)).join("")}</tbody></table>`;
  const perRun = runs
    .map((r) => {
      const details = Object.entries(r.details)
        .map(([k, v]) => `<li><b>${esc(k)}</b>: ${esc(String(v))}</li>`)
        .join("");
      const rows = r.report.perModel.map((g) => summaryRow(g.name, g)).join("");
      return `<details${runs.length === 1 ? " open" : ""}><summary>${esc(r.name)}: per model (${r.report.perModel.length}), duration ${fmt(r.report.durationS, 1)} s</summary>${
        details ? `<ul>${details}</ul>` : ""
      }<table><thead>${SUMMARY_HEAD}</thead><tbody>${rows}</tbody></table></details>`;
    })
    .join("");
  const kvCharts = runs.map((r, i) => (r.kv ? `<div><h3>KV pages per model over time: ${esc(r.name)}</h3><div class="chart" id="kv${i}"></div></div>` : "")).join("");
  const kvDivs = kvCharts === "" ? "" : `<div class="row">${kvCharts}</div>`;
  const echartsTag = input.inlineEcharts === false ? `<script src="echarts.min.js"></script>` : `<script>${echartsJs().replace(/<\/script/gi, "<\\/script")}</script>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(input.title)}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin-top:28px}h3{font-size:15px;margin:18px 0 4px}
.desc{color:#555;white-space:pre-wrap;margin-bottom:12px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}
th:first-child{text-align:left}thead th{background:#f4f4f4}
.row{display:flex;flex-wrap:wrap;gap:16px}.chart{width:660px;height:340px}.wide{width:1340px;height:360px}
details{margin:8px 0}summary{cursor:pointer;font-weight:600}
.note{color:#666;font-size:12px}
</style>${echartsTag}</head>
<body>
<h1>${esc(input.title)}</h1>
${input.description ? `<div class="desc">${esc(input.description)}</div>` : ""}
<div class="note">TTFT/TPOT in ms. TPOT = (E2E − TTFT)/(output tokens − 1) (vLLM). A request attains an SLO when it completed and its latency is strictly below the target; failed requests miss. Percentiles are nearest-rank over completed requests. Goodput = requests attaining both SLOs per second.</div>
<h2>Summary</h2>${overallTable}
<h2>Latency distributions</h2>
<div class="row"><div class="chart" id="ttft"></div><div class="chart" id="tpot"></div></div>
<h2>SLO attainment per model</h2><div class="wide" id="attain"></div>
${kvDivs}
<h2>Per model</h2>${perRun}
<script>
const D = ${jsonForScript(data)};
function cdf(id, title, key){
  const el = document.getElementById(id); if(!el || typeof echarts==="undefined") return;
  const all = D.runs.flatMap(r => r[key].map(p => p[0])).filter(x => x > 0);
  const useLog = all.length > 0 && Math.max(...all) / Math.min(...all) > 50;
  echarts.init(el).setOption({
    animation:false, title:{text:title,left:"center",textStyle:{fontSize:14}},
    tooltip:{trigger:"axis"}, legend:{bottom:0,type:"scroll"}, grid:{left:50,right:20,top:40,bottom:60},
    xAxis:{type:useLog?"log":"value",name:"ms",nameLocation:"middle",nameGap:26,scale:true},
    yAxis:{type:"value",min:0,max:1,name:"fraction"},
    series: D.runs.map(r => ({name:r.name,type:"line",step:"end",showSymbol:false,data:r[key].filter(p => !useLog || p[0] > 0)}))
  });
}
cdf("ttft","TTFT CDF (completed requests)","ttft");
cdf("tpot","TPOT CDF (completed requests, ≥ 2 tokens)","tpot");
(function(){
  const el = document.getElementById("attain"); if(!el || typeof echarts==="undefined") return;
  echarts.init(el).setOption({
    animation:false, title:{text:"Requests meeting both SLOs (%)",left:"center",textStyle:{fontSize:14}},
    tooltip:{trigger:"axis"}, legend:{bottom:0,type:"scroll"}, grid:{left:50,right:20,top:40,bottom:80},
    xAxis:{type:"category",data:D.models,axisLabel:{rotate:D.models.length>12?45:0,interval:0}},
    yAxis:{type:"value",min:0,max:100},
    series: D.attainment.map(a => ({name:a.name,type:"bar",data:a.values,label:{show:D.models.length<=16,position:"top",fontSize:10}}))
  });
})();
D.runs.forEach((r, i) => {
  if(!r.kv || typeof echarts==="undefined") return;
  echarts.init(document.getElementById("kv"+i)).setOption({
    animation:false, tooltip:{trigger:"axis"}, legend:{bottom:0,type:"scroll"}, grid:{left:60,right:20,top:20,bottom:60},
    xAxis:{type:"value",name:"s",nameLocation:"middle",nameGap:26},
    yAxis:{type:"value",name:"pages"},
    series: r.kv.models.map((m, k) => ({name:m,type:"line",stack:"kv",areaStyle:{},showSymbol:false,data:r.kv.tS.map((t, j) => [t, r.kv.series[k][j]])}))
  });
});
</script>
</body></html>
`;
}
