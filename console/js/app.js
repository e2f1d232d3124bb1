// The console shell: sign-in, header and navigation, language switch, hash routing.

import { call, AUTH_CODES } from "./api.js";
import { getCredentials, setCredentials, clearCredentials, DEFAULT_REGION } from "./session.js";
import { t, getLang, setLang, onLangChange, applyI18n } from "./i18n.js";
import { h, errorBox, fill } from "./ui.js";
import { clearThumbnails } from "./thumbs.js";
import * as overview from "./pages/overview.js";
import * as groups from "./pages/groups.js";
import * as persons from "./pages/persons.js";
import * as search from "./pages/search.js";
import * as searchlog from "./pages/searchlog.js";

const ROUTES = [
  { pattern: /^\/overview$/, nav: "overview", page: overview },
  { pattern: /^\/groups$/, nav: "groups", page: groups },
  { pattern: /^\/groups\/(.+)$/, nav: "groups", page: persons },
  { pattern: /^\/search$/, nav: "search", page: search },
  { pattern: /^\/log$/, nav: "log", page: searchlog },
];

const $ = (id) => document.getElementById(id);

function maskId(id) {
  return id.length > 12 ? `${id.slice(0, 6)}…${id.slice(-4)}` : id;
}

// ---------------- Sign-in ----------------

function showSignIn(message) {
  $("shell").hidden = true;
  $("signin").hidden = false;
  fill($("signin-error"), ...(message ? [message] : []));
  const creds = getCredentials();
  $("signin-region").value = (creds && creds.region) || $("signin-region").value || DEFAULT_REGION;
  $("signin-id").focus();
}

async function onSignIn(e) {
  e.preventDefault();
  const form = $("signin-form");
  const creds = {
    secretId: $("signin-id").value.trim(),
    secretKey: $("signin-key").value,
    region: $("signin-region").value.trim() || DEFAULT_REGION,
    token: $("signin-token").value.trim(),
  };
  if (!creds.secretId || !creds.secretKey) {
    form.reportValidity();
    return;
  }
  const btn = $("signin-submit");
  btn.disabled = true;
  btn.classList.add("busy");
  $("signin-error").replaceChildren();
  try {
    // Any signed call proves the key; GetGroupList is cheap. A key that is valid but not allowed to list
    // groups (a CAM sub-user) still signs in: only the AuthFailure codes of the signature check refuse it.
    await call("GetGroupList", { Offset: 0, Limit: 1 }, { credentials: creds });
  } catch (err) {
    if (AUTH_CODES.has(err.code) || err.code === "NetworkError" || err.code === "InvalidResponse") {
      fill($("signin-error"), errorBox(err));
      btn.disabled = false;
      btn.classList.remove("busy");
      return;
    }
  }
  btn.disabled = false;
  btn.classList.remove("busy");
  setCredentials(creds);
  $("signin-key").value = "";
  enterShell();
}

function signOut() {
  clearCredentials();
  clearThumbnails();
  closeMenu();
  showSignIn();
}

// ---------------- Shell and routing ----------------

function enterShell() {
  const creds = getCredentials();
  $("signin").hidden = true;
  $("shell").hidden = false;
  fill($("who"), h("code", { title: creds.secretId }, maskId(creds.secretId)), h("span", { class: "muted" }, ` · ${creds.region}`));
  if (!location.hash || location.hash === "#" || location.hash === "#/") location.replace("#/overview");
  else route();
}

function currentPath() {
  return location.hash.replace(/^#/, "").split("?")[0] || "/overview";
}

function route() {
  if (!getCredentials()) return showSignIn();
  const path = currentPath();
  let match = null;
  let found = ROUTES.find((r) => (match = path.match(r.pattern)));
  if (!found) {
    location.replace("#/overview");
    return;
  }
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.route === found.nav));
  document.title = `${t(`nav.${found.nav}`)} · ${t("app.title")}`;
  closeMenu();
  const container = h("div", { class: "page", "data-page": found.nav });
  fill($("main"), container);
  const arg = match[1] !== undefined ? decodeURIComponent(match[1]) : undefined;
  found.page.render(container, arg).catch((err) => container.append(errorBox(err)));
}

function closeMenu() {
  document.body.classList.remove("menu-open");
  $("nav-toggle").setAttribute("aria-expanded", "false");
}

function toggleLang() {
  setLang(getLang() === "zh" ? "en" : "zh");
}

function drawLangButtons() {
  // The button names the language it switches to.
  for (const id of ["lang-toggle", "signin-lang"]) {
    const b = $(id);
    b.textContent = getLang() === "zh" ? "English" : "中文";
    b.setAttribute("lang", getLang() === "zh" ? "en" : "zh-CN");
  }
}

function init() {
  applyI18n();
  drawLangButtons();
  onLangChange(() => {
    applyI18n();
    drawLangButtons();
    if (!$("shell").hidden) route();
  });
  $("signin-form").addEventListener("submit", onSignIn);
  $("sign-out").addEventListener("click", signOut);
  $("lang-toggle").addEventListener("click", toggleLang);
  $("signin-lang").addEventListener("click", toggleLang);
  $("nav-toggle").addEventListener("click", () => {
    const open = document.body.classList.toggle("menu-open");
    $("nav-toggle").setAttribute("aria-expanded", String(open));
  });
  window.addEventListener("hashchange", route);
  if (getCredentials()) enterShell();
  else showSignIn();
  document.body.classList.add("ready");
}

init();
