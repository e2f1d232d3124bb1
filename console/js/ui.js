// Small DOM helpers shared by the pages: element builder, dialogs, toasts, error boxes, pager, formats,
// and reading photos from file inputs or drops.

import { t, getLang } from "./i18n.js";

/**
 * h("div", {class: "x", onclick: fn, "data-id": 1}, "text", child, [more]) builds an element.
 * Props: `class`, `text`, `html` is not supported on purpose (everything is text), `on<event>` handlers,
 * boolean attributes (true sets, false/null skips), everything else via setAttribute.
 */
export function h(tag, props, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "value" && !svg) el.value = v;
      else if (k === "checked" && !svg) el.checked = !!v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

/** Replace an element's children; arrays are flattened and null/false skipped, as in h(). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function svg(tag, props, ...children) {
  return h(`svg:${tag}`, props, ...children);
}

// ---- Formats ----

function locale() {
  return getLang() === "zh" ? "zh-CN" : "en-GB";
}

export function fmtNumber(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return Number(n).toLocaleString(locale(), { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function fmtDateTime(ms) {
  if (!ms) return "–";
  const d = new Date(Number(ms));
  const p = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  return ms >= 100 ? `${fmtNumber(ms, 0)} ms` : `${fmtNumber(ms, 1)} ms`;
}

export function genderLabel(g) {
  return t(g === 1 ? "gender.male" : g === 2 ? "gender.female" : "gender.unset");
}

// ---- Feedback ----

/** The box that shows a failed call: Tencent's Code, its Message and the RequestId. */
export function errorBox(err) {
  const code = err && err.code ? err.code : "Error";
  const message = err && err.message ? err.message : String(err);
  return h("div", { class: "alert alert-error", role: "alert" },
    h("strong", { class: "err-code" }, code),
    h("span", { class: "err-message" }, message),
    err && err.requestId ? h("span", { class: "err-request" }, `RequestId ${err.requestId}`) : null);
}

export function toast(message, kind = "ok") {
  let host = document.getElementById("toasts");
  if (!host) {
    host = h("div", { id: "toasts", "aria-live": "polite" });
    document.body.append(host);
  }
  const el = h("div", { class: `toast toast-${kind}` }, message);
  host.append(el);
  setTimeout(() => el.classList.add("toast-out"), 3500);
  setTimeout(() => el.remove(), 4000);
}

export function toastError(err) {
  toast(`${err.code || "Error"}: ${err.message || ""}`, "error");
}

export function spinner() {
  return h("div", { class: "loading", role: "status" }, h("span", { class: "spin" }), t("common.loading"));
}

export function empty(text) {
  return h("div", { class: "empty" }, text);
}

// ---- Dialogs (native <dialog>) ----

/**
 * A modal form. `body` is an element (its inputs are read by the caller); `onSubmit` runs on the submit
 * button and may throw an ApiError, which is shown inside the dialog and keeps it open. Resolves with
 * onSubmit's value, or null when cancelled.
 */
export function formDialog({ title, body, submitLabel, danger = false, onSubmit, wide = false }) {
  return new Promise((resolve) => {
    const errorHost = h("div", { class: "dialog-error" });
    const submit = h("button", { type: "submit", class: danger ? "btn btn-danger" : "btn btn-primary" },
      submitLabel || t("common.save"));
    const cancel = h("button", { type: "button", class: "btn", onclick: () => close(null) }, t("common.cancel"));
    const form = h("form", { method: "dialog", class: "dialog-form", novalidate: true },
      h("header", { class: "dialog-head" }, h("h2", {}, title),
        h("button", { type: "button", class: "icon-btn", "aria-label": t("common.close"), onclick: () => close(null) }, "×")),
      h("div", { class: "dialog-body" }, body, errorHost),
      h("footer", { class: "dialog-foot" }, cancel, submit));
    const dlg = h("dialog", { class: wide ? "dialog dialog-wide" : "dialog" }, form);
    let settled = false;
    function close(value) {
      if (settled) return;
      settled = true;
      dlg.close();
      dlg.remove();
      resolve(value);
    }
    dlg.addEventListener("cancel", (e) => { e.preventDefault(); close(null); });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      errorHost.replaceChildren();
      submit.disabled = true;
      submit.classList.add("busy");
      try {
        const value = onSubmit ? await onSubmit() : true;
        if (value !== undefined && value !== false) close(value);
      } catch (err) {
        fill(errorHost, err && err.code ? errorBox(err) : h("div", { class: "alert alert-error" }, String(err.message || err)));
      } finally {
        submit.disabled = false;
        submit.classList.remove("busy");
      }
    });
    document.body.append(dlg);
    dlg.showModal();
    const first = body.querySelector("input:not([type=hidden]):not([disabled]), select, textarea");
    if (first) first.focus();
  });
}

/** A confirmation with an optional warning paragraph; resolves true when confirmed and `action` succeeded. */
export function confirmDialog({ title, message, warning, confirmLabel, action }) {
  const body = h("div", {},
    h("p", {}, message),
    warning ? h("div", { class: "alert alert-warn" }, warning) : null);
  return formDialog({ title, body, submitLabel: confirmLabel || t("common.delete"), danger: true,
    onSubmit: async () => { if (action) await action(); return true; } })
    .then((v) => v === true);
}

// ---- Form fields ----

let fieldSeq = 0;

/** A labelled field wrapper around an input element. */
export function field(label, input, hint) {
  if (!input.id) input.id = `f${++fieldSeq}`;
  return h("div", { class: "field" },
    h("label", { for: input.id }, label),
    input,
    hint ? h("div", { class: "hint" }, hint) : null);
}

export function genderSelect(value = 0) {
  return h("select", { name: "Gender" },
    [0, 1, 2].map((g) => h("option", { value: g, selected: g === value }, genderLabel(g))));
}

// ---- Pager ----

export function pager({ offset, limit, total, onChange }) {
  const from = total === 0 ? 0 : offset + 1;
  const to = Math.min(offset + limit, total);
  return h("div", { class: "pager" },
    h("span", { class: "pager-info" }, t("common.range", { from, to, total })),
    h("button", { type: "button", class: "btn btn-sm", disabled: offset <= 0,
      onclick: () => onChange(Math.max(0, offset - limit)) }, t("common.prev")),
    h("button", { type: "button", class: "btn btn-sm", disabled: offset + limit >= total,
      onclick: () => onChange(offset + limit) }, t("common.next")));
}

// ---- Photos ----

// Tencent takes JPG, PNG and BMP up to 5 MiB of base64. Anything else, or anything larger, is re-encoded
// here as a JPEG of at most 1920 px on its long side.
const ACCEPTED = new Set(["image/jpeg", "image/png", "image/bmp"]);
const MAX_BASE64 = 5 * 1024 * 1024;

function blobToBase64(blob) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ""));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(blob);
  });
}

/**
 * Read a photo for an API call. Returns { base64, width, height, url } where width/height are the pixel size
 * of the image sent (face rectangles come back in those pixels) and url displays it.
 */
export async function readPhoto(file) {
  const url = URL.createObjectURL(file);
  const img = await loadImage(url);
  const width = img.naturalWidth;
  const height = img.naturalHeight;
  if (ACCEPTED.has(file.type) && Math.ceil(file.size / 3) * 4 <= MAX_BASE64) {
    return { base64: await blobToBase64(file), width, height, url, name: file.name, resized: false };
  }
  const scale = Math.min(1, 1920 / Math.max(width, height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((r) => canvas.toBlob(r, "image/jpeg", 0.92));
  return { base64: await blobToBase64(blob), width: canvas.width, height: canvas.height, url, name: file.name, resized: true };
}

export function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(Object.assign(new Error(t("photo.unreadable")), { code: "ImageDecodeFailed" }));
    img.src = url;
  });
}

/**
 * A drop zone with a file input. `onFiles(files)` gets the chosen or dropped image files.
 * The <input type=file> is a real, visible-to-automation input (class `file-input`).
 */
export function dropZone({ onFiles, multiple = false, label, compact = false, inputName }) {
  const input = h("input", { type: "file", accept: "image/*", class: "file-input", multiple, name: inputName,
    onchange: () => { if (input.files.length) onFiles(Array.from(input.files)); input.value = ""; } });
  const zone = h("label", { class: compact ? "drop-zone compact" : "drop-zone" },
    input,
    h("span", { class: "drop-icon", "aria-hidden": "true" }, "⇪"),
    h("span", { class: "drop-text" }, label || t("photo.drop")),
    h("span", { class: "drop-hint" }, t("photo.formats")));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = Array.from(e.dataTransfer.files).filter((f) => f.type.startsWith("image/"));
    if (files.length) onFiles(multiple ? files : files.slice(0, 1));
  });
  return zone;
}

/** Run async `fn` over `items` with at most `limit` in flight. */
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Remember `params` in the location hash's query part (#/route?x=1) without re-rendering. */
export function routeParams() {
  const q = location.hash.split("?")[1] || "";
  return Object.fromEntries(new URLSearchParams(q));
}
