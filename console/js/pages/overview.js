// Overview: totals, calls and errors over time per interface group, per-action table, QPS against limits.
// One DescribeStatInfo call.

import { call } from "../api.js";
import { t, has } from "../i18n.js";
import { h, fmtNumber, fmtMs, errorBox, spinner, empty, fill } from "../ui.js";
import { stackedChart, meter } from "../chart.js";

const RANGES = [
  { key: "1h", seconds: 3600 },
  { key: "6h", seconds: 6 * 3600 },
  { key: "24h", seconds: 24 * 3600 },
  { key: "7d", seconds: 7 * 86400 },
];
const BIN_CHOICES = [300, 900, 1800, 3600, 3 * 3600, 6 * 3600];
const MAX_BINS = 144;

let rangeKey = "24h"; // kept while the page is left and re-entered

// Interface groups may come as the configuration keys or as Tencent's Chinese names.
const GROUP_KEYS = {
  人脸检测与分析相关接口: "detection",
  五官定位相关接口: "landmarks",
  人脸比对相关接口: "comparison",
  人脸验证相关接口: "verification",
  人员库管理相关接口: "group_management",
  人脸搜索相关接口: "search",
  人脸静态活体检测相关接口: "liveness",
  "人脸静态活体检测(高精度版)相关接口": "liveness_accurate",
  人员查重相关接口: "similar_person",
};

export function interfaceGroupLabel(name) {
  const key = GROUP_KEYS[name] || name;
  return has(`ig.${key}`) ? t(`ig.${key}`) : name;
}

export async function render(root) {
  const body = h("div", { class: "page-body" }, spinner());
  const rangeButtons = h("div", { class: "segmented", role: "group", "aria-label": t("overview.range") },
    RANGES.map((r) => h("button", {
      type: "button", class: r.key === rangeKey ? "active" : null, "data-range": r.key,
      onclick: () => { rangeKey = r.key; render(root); },
    }, t(`range.${r.key}`))));
  fill(root,
    h("div", { class: "page-head" },
      h("h1", {}, t("nav.overview")),
      h("div", { class: "page-tools" }, rangeButtons,
        h("button", { type: "button", class: "btn", id: "overview-refresh", onclick: () => render(root) }, t("common.refresh")))),
    body);

  const range = RANGES.find((r) => r.key === rangeKey);
  const end = Math.floor(Date.now() / 1000);
  const start = end - range.seconds;
  let r;
  try {
    r = await call("DescribeStatInfo", { StartTime: start, EndTime: end });
  } catch (err) {
    fill(body, errorBox(err));
    return;
  }
  fill(body, ...content(r, start, end));
}

function content(r, start, end) {
  const buckets = r.Buckets || [];
  const totals = r.Totals || {};
  const limits = r.Limits || [];
  const calls = buckets.reduce((a, b) => a + (b.Calls || 0), 0);
  const errors = buckets.reduce((a, b) => a + (b.Errors || 0), 0);

  const cards = h("div", { class: "stat-cards" },
    card(t("overview.calls"), fmtNumber(calls), "total-calls"),
    card(t("overview.errors"), fmtNumber(errors), "total-errors",
      calls ? t("overview.errorRate", { rate: fmtNumber((errors / calls) * 100, 2) }) : null, errors ? "bad" : null),
    card(t("overview.groups"), fmtNumber(totals.GroupNum), "total-groups"),
    card(t("overview.persons"), fmtNumber(totals.PersonNum), "total-persons"),
    card(t("overview.faces"), fmtNumber(totals.FaceNum), "total-faces"));

  return [
    cards,
    h("section", { class: "panel" }, h("h2", {}, t("overview.chartTitle")), chart(buckets, start, end)),
    h("div", { class: "two-col" },
      h("section", { class: "panel" }, h("h2", {}, t("overview.byAction")), actionTable(buckets)),
      h("section", { class: "panel" }, h("h2", {}, t("overview.qps")), qpsTable(limits))),
  ];
}

function card(label, value, id, sub, tone) {
  return h("div", { class: ["stat-card", tone] },
    h("div", { class: "stat-label" }, label),
    h("div", { class: "stat-value", id }, value),
    sub ? h("div", { class: "stat-sub" }, sub) : null);
}

function chart(buckets, start, end) {
  const binSeconds = BIN_CHOICES.find((b) => (end - start) / b <= MAX_BINS) || BIN_CHOICES[BIN_CHOICES.length - 1];
  const first = Math.floor(start / binSeconds) * binSeconds;
  const n = Math.floor((end - first) / binSeconds) + 1;
  const bins = Array.from({ length: n }, (_, i) => first + i * binSeconds);
  const groups = [...new Set(buckets.map((b) => b.InterfaceGroup))].sort();
  const values = Object.fromEntries(groups.map((g) => [g, new Array(n).fill(0)]));
  const errs = new Array(n).fill(0);
  for (const b of buckets) {
    const i = Math.floor((b.Time - first) / binSeconds);
    if (i < 0 || i >= n) continue;
    values[b.InterfaceGroup][i] += b.Calls || 0;
    errs[i] += b.Errors || 0;
  }
  return stackedChart({
    bins, binSeconds, errors: errs, errorsLabel: t("overview.errors"), emptyText: t("overview.noCalls"),
    series: groups.map((g) => ({ label: interfaceGroupLabel(g), values: values[g] })),
  });
}

function actionTable(buckets) {
  const rows = new Map();
  for (const b of buckets) {
    let r = rows.get(b.Action);
    if (!r) {
      r = { action: b.Action, group: b.InterfaceGroup, calls: 0, errors: 0, p50w: 0, p99: 0 };
      rows.set(b.Action, r);
    }
    r.calls += b.Calls || 0;
    r.errors += b.Errors || 0;
    r.p50w += (b.LatencyP50Ms || 0) * (b.Calls || 0);
    r.p99 = Math.max(r.p99, b.LatencyP99Ms || 0);
  }
  const list = [...rows.values()].sort((a, b) => b.calls - a.calls || a.action.localeCompare(b.action));
  if (!list.length) return empty(t("overview.noCalls"));
  return h("div", { class: "table-wrap" },
    h("table", { class: "table", id: "action-table" },
      h("thead", {}, h("tr", {},
        h("th", {}, t("overview.action")), h("th", {}, t("overview.interfaceGroup")),
        h("th", { class: "num" }, t("overview.calls")), h("th", { class: "num" }, t("overview.errors")),
        h("th", { class: "num", title: t("overview.p50Note") }, "p50"),
        h("th", { class: "num", title: t("overview.p99Note") }, "p99"))),
      h("tbody", {}, list.map((r) => h("tr", { class: "action-row", "data-action": r.action },
        h("td", {}, h("code", {}, r.action)),
        h("td", { class: "muted" }, interfaceGroupLabel(r.group)),
        h("td", { class: "num calls" }, fmtNumber(r.calls)),
        h("td", { class: ["num", r.errors ? "bad" : null] }, fmtNumber(r.errors)),
        h("td", { class: "num" }, fmtMs(r.calls ? r.p50w / r.calls : 0)),
        h("td", { class: "num" }, fmtMs(r.p99)))))),
    h("p", { class: "footnote" }, t("overview.latencyNote")));
}

function qpsTable(limits) {
  if (!limits.length) return empty(t("overview.noLimits"));
  return h("div", { class: "table-wrap" },
    h("table", { class: "table", id: "qps-table" },
      h("thead", {}, h("tr", {},
        h("th", {}, t("overview.interfaceGroup")), h("th", { class: "num" }, t("overview.peak")),
        h("th", { class: "num" }, t("overview.limit")), h("th", { class: "meter-col" }, ""))),
      h("tbody", {}, limits.map((l) => h("tr", { "data-interface-group": l.InterfaceGroup },
        h("td", {}, interfaceGroupLabel(l.InterfaceGroup)),
        h("td", { class: "num" }, fmtNumber(l.PeakQps, 2)),
        h("td", { class: "num" }, l.Qps > 0 ? fmtNumber(l.Qps) : h("span", { class: "muted" }, t("overview.noLimit"))),
        h("td", { class: "meter-col" }, l.Qps > 0 ? meter(l.PeakQps, l.Qps) : null))))),
    h("p", { class: "footnote" }, t("overview.peakNote")));
}
