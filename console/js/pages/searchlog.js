// Search log (DescribeSearchLog): every 1:N search with who made it, its outcome, latency and candidates.

import { call, callAll } from "../api.js";
import { t } from "../i18n.js";
import { h, fmtNumber, fmtDateTime, fmtMs, errorBox, spinner, empty, pager, field, fill } from "../ui.js";
import { faceThumb } from "../thumbs.js";

const PAGE = 20;
const filters = { start: "", end: "", groupId: "", secretId: "", principal: "", outcome: "", code: "" };
let offset = 0;

function toLocalInput(ms) {
  const d = new Date(ms);
  const p = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function toUnix(local) {
  if (!local) return undefined;
  const ms = new Date(local).getTime();
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

export async function render(root) {
  const start = h("input", { type: "datetime-local", id: "log-start", value: filters.start });
  const end = h("input", { type: "datetime-local", id: "log-end", value: filters.end });
  const groupList = h("datalist", { id: "log-groups" });
  const group = h("input", { type: "text", id: "log-group", list: "log-groups", value: filters.groupId, placeholder: t("log.anyGroup") });
  const secret = h("input", { type: "text", id: "log-secret", value: filters.secretId, placeholder: t("log.anyKey"), autocomplete: "off" });
  const principal = h("input", { type: "text", id: "log-principal", value: filters.principal, placeholder: t("log.anyPrincipal"), autocomplete: "off" });
  const outcome = h("select", { id: "log-outcome" },
    h("option", { value: "", selected: filters.outcome === "" }, t("log.outcomeAll")),
    h("option", { value: "OK", selected: filters.outcome === "OK" }, t("log.outcomeOk")),
    h("option", { value: "code", selected: filters.outcome === "code" }, t("log.outcomeCode")));
  const code = h("input", { type: "text", id: "log-code", value: filters.code, placeholder: "FailedOperation.…", hidden: filters.outcome !== "code" });
  outcome.addEventListener("change", () => { code.hidden = outcome.value !== "code"; if (!code.hidden) code.focus(); });

  const body = h("div", { class: "page-body" }, spinner());
  const form = h("form", { class: "panel filter-form", id: "log-filter" },
    h("div", { class: "filter-grid" },
      field(t("log.from"), start), field(t("log.to"), end), field(t("log.group"), group), field(t("log.key"), secret),
      field(t("log.principal"), principal),
      h("div", { class: "field" }, h("label", { for: "log-outcome" }, t("log.outcome")), outcome, code)),
    groupList,
    h("div", { class: "form-actions" },
      h("button", { type: "button", class: "btn", onclick: () => {
        Object.assign(filters, { start: "", end: "", groupId: "", secretId: "", principal: "", outcome: "", code: "" });
        offset = 0;
        render(root);
      } }, t("log.reset")),
      h("button", { type: "button", class: "btn", onclick: () => {
        filters.start = toLocalInput(Date.now() - 3600 * 1000); filters.end = ""; offset = 0; render(root);
      } }, t("log.lastHour")),
      h("button", { type: "submit", class: "btn btn-primary", id: "log-apply" }, t("log.apply"))));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    Object.assign(filters, {
      start: start.value, end: end.value, groupId: group.value.trim(), secretId: secret.value.trim(),
      principal: principal.value.trim(),
      outcome: outcome.value, code: code.value.trim(),
    });
    offset = 0;
    render(root);
  });

  fill(root,
    h("div", { class: "page-head" }, h("h1", {}, t("nav.log")),
      h("div", { class: "page-tools" }, h("button", { type: "button", class: "btn", id: "log-refresh", onclick: () => render(root) }, t("common.refresh")))),
    form, body);

  // Group suggestions (best effort).
  callAll("ConsoleGetGroupList", {}, "GroupInfos", "GroupNum")
    .then((groups) => fill(groupList, ...groups.map((g) => h("option", { value: g.GroupId }, g.GroupName))))
    .catch(() => {});

  const params = { Offset: offset, Limit: PAGE };
  const s = toUnix(filters.start);
  const e = toUnix(filters.end);
  if (s !== undefined) params.StartTime = s;
  if (e !== undefined) params.EndTime = e;
  if (filters.groupId) params.GroupId = filters.groupId;
  if (filters.secretId) params.SecretId = filters.secretId;
  if (filters.principal) params.Principal = filters.principal;
  if (filters.outcome === "OK") params.Code = "OK";
  else if (filters.outcome === "code" && filters.code) params.Code = filters.code;

  let r;
  try {
    r = await call("DescribeSearchLog", params);
  } catch (err) {
    fill(body, errorBox(err));
    return;
  }
  const records = r.Records || [];
  fill(body,
    records.length ? table(records) : empty(t("log.none")),
    pager({ offset, limit: PAGE, total: r.Total || 0, onChange: (o) => { offset = o; render(root); } }));
}

function table(records) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table log-table", id: "log-table" },
    h("thead", {}, h("tr", {},
      h("th", {}, t("log.time")), h("th", {}, t("overview.action")), h("th", {}, t("log.outcome")),
      h("th", {}, t("log.groups")), h("th", {}, t("log.key")), h("th", { class: "num" }, t("log.latency")),
      h("th", { class: "num" }, t("log.faces")), h("th", {}, t("log.candidates")))),
    h("tbody", {}, records.map((rec) => h("tr", { class: "log-row", "data-request-id": rec.RequestId, "data-code": rec.Code },
      h("td", { class: "nowrap" }, fmtDateTime(rec.Time),
        h("div", { class: "request-id", title: "RequestId" }, h("code", {}, rec.RequestId))),
      h("td", {}, h("code", {}, rec.Action)),
      h("td", {}, rec.Code === "OK" || rec.Code === ""
        ? h("span", { class: "status ok" }, t("log.ok"))
        : h("span", { class: "status bad", title: rec.Code }, rec.Code)),
      h("td", {}, (rec.GroupIds || []).map((g) => h("a", { href: `#/groups/${encodeURIComponent(g)}`, class: "chip" }, g))),
      h("td", {}, h("div", {}, h("code", { class: "small" }, rec.SecretId)),
        rec.Principal ? h("div", { class: "muted small" }, rec.Principal) : null),
      h("td", { class: "num" }, fmtMs(rec.LatencyMs)),
      h("td", { class: "num" }, fmtNumber(rec.FaceNum)),
      h("td", {}, candidates(rec.Candidates || [])))))));
}

function candidates(list) {
  if (!list.length) return h("span", { class: "muted" }, "–");
  return h("div", { class: "log-cands" }, list.map((c, i) => h("span", { class: "log-cand", "data-person-id": c.PersonId },
    i === 0 && c.FaceId ? faceThumb(c.FaceId, { size: "sm" }) : null,
    h("code", {}, c.PersonId),
    h("span", { class: scoreClass(c.Score) }, fmtNumber(c.Score, 1)))));
}

function scoreClass(score) {
  return `score-chip ${score >= 80 ? "good" : score >= 60 ? "warn" : "low"}`;
}
