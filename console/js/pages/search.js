// Search: 1:N (ConsoleSearchFaces / ConsoleSearchPersons) with face rectangles drawn on the photo and the
// candidates listed with thumbnails; and 1:1 CompareFace.

import { call, callAll } from "../api.js";
import { t } from "../i18n.js";
import { h, fmtNumber, errorBox, spinner, empty, field, readPhoto, dropZone, genderLabel, fill } from "../ui.js";
import { faceThumb } from "../thumbs.js";
import { retCodeText } from "./persons.js";

// Kept while the page is left and re-entered (and across a language switch).
const state = {
  tab: "search",
  photo: null, result: null, error: null, mode: "faces", maxFaceNum: 1, maxPersonNum: 5,
  groupIds: null, // Set of checked GroupIds; null = not chosen yet (all checked)
  compare: { a: null, b: null, version: "3.0", result: null, error: null },
};

const BOX_COLORS = ["#2563eb", "#db2777", "#0d9488", "#d97706", "#7c3aed", "#0891b2", "#65a30d", "#ea580c", "#475569", "#9333ea"];
// Same-person bars of CompareFace (README "Scores": FAR 1e-3 per comparison).
const COMPARE_THRESHOLD = { "3.0": 40, "2.0": 70 };
// Search: 80 is Tencent's rule of thumb for identification (FAR 1e-7 per comparison); 60 "possible".
const SEARCH_MATCH = 80;
const SEARCH_POSSIBLE = 60;

export async function render(root) {
  const tabs = h("div", { class: "tabs", role: "tablist" },
    tab("search", t("search.tabSearch")), tab("compare", t("search.tabCompare")));
  const panel = h("div", { class: "page-body" });
  fill(root, h("div", { class: "page-head" }, h("h1", {}, t("nav.search"))), tabs, panel);

  function tab(key, label) {
    return h("button", { type: "button", role: "tab", class: state.tab === key ? "tab active" : "tab", id: `tab-${key}`,
      "aria-selected": state.tab === key ? "true" : "false",
      onclick: () => { state.tab = key; render(root); } }, label);
  }
  if (state.tab === "compare") comparePanel(panel);
  else await searchPanel(panel);
}

// ---------------- 1:N search ----------------

async function searchPanel(panel) {
  const groupsHost = h("div", { class: "check-list groups-pick" }, spinner());
  const stage = h("div", { class: "stage-host" });
  const results = h("div", { class: "results", id: "search-results" });
  const searchBtn = h("button", { type: "submit", class: "btn btn-primary", id: "search-submit" }, t("search.run"));
  const mode = h("select", { id: "search-mode" },
    h("option", { value: "faces", selected: state.mode === "faces" }, t("search.modeFaces")),
    h("option", { value: "persons", selected: state.mode === "persons" }, t("search.modePersons")));
  const maxFace = h("input", { type: "number", min: 1, max: 10, value: state.maxFaceNum, id: "search-max-faces" });
  const maxPerson = h("input", { type: "number", min: 1, max: 100, value: state.maxPersonNum, id: "search-max-persons" });
  let groupBoxes = [];

  const zone = dropZone({
    inputName: "SearchImage", compact: !!state.photo, label: state.photo ? t("photo.change") : undefined,
    onFiles: async ([file]) => {
      try {
        const photo = await readPhoto(file);
        if (state.photo) URL.revokeObjectURL(state.photo.url);
        state.photo = photo;
        state.result = null;
        state.error = null;
      } catch (err) {
        state.photo = null;
        state.error = err;
      }
      drawStage();
      drawResults();
      zone.classList.toggle("compact", !!state.photo);
      zone.querySelector(".drop-text").textContent = state.photo ? t("photo.change") : t("photo.drop");
    },
  });

  const options = h("details", { class: "options", open: state.optionsOpen || null,
    ontoggle: () => { state.optionsOpen = options.open; } },
    h("summary", {}, t("search.options")),
    h("div", { class: "form-grid options-grid" },
      field(t("search.mode"), mode, t("search.modeHint")),
      field(t("search.maxFaceNum"), maxFace),
      field(t("search.maxPersonNum"), maxPerson)));
  const form = h("form", { class: "search-form", novalidate: true },
    h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", {}, t("search.groups")),
        h("span", { class: "panel-tools" },
          h("button", { type: "button", class: "link-btn", onclick: () => setAll(true) }, t("common.all")),
          h("button", { type: "button", class: "link-btn", onclick: () => setAll(false) }, t("common.none")))),
      groupsHost, options),
    h("section", { class: "panel" }, h("h2", {}, t("search.photo")), stage,
      h("div", { class: "photo-actions" }, zone, searchBtn)));

  fill(panel, h("div", { class: "search-layout" }, form, results));
  drawStage();
  drawResults();

  function setAll(on) {
    groupBoxes.forEach((b) => { b.checked = on; });
    state.groupIds = new Set(groupBoxes.filter((b) => b.checked).map((b) => b.value));
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    state.mode = mode.value;
    state.maxFaceNum = clampInt(maxFace.value, 1, 10, 1);
    state.maxPersonNum = clampInt(maxPerson.value, 1, 100, 5);
    const ids = groupBoxes.filter((b) => b.checked).map((b) => b.value);
    if (!state.photo) { state.error = { code: "", message: t("search.needPhoto") }; drawResults(); return; }
    if (!ids.length) { state.error = { code: "", message: t("search.needGroup") }; drawResults(); return; }
    searchBtn.disabled = true;
    fill(results, spinner());
    try {
      const action = state.mode === "persons" ? "ConsoleSearchPersons" : "ConsoleSearchFaces";
      state.result = await call(action, {
        GroupIds: ids, Image: state.photo.base64, MaxFaceNum: state.maxFaceNum, MaxPersonNum: state.maxPersonNum,
        NeedPersonInfo: 1,
      });
      state.result.mode = state.mode;
      state.error = null;
    } catch (err) {
      state.result = null;
      state.error = err;
    } finally {
      searchBtn.disabled = false;
    }
    drawStage();
    drawResults();
  });

  function drawStage() {
    if (!state.photo) { fill(stage); return; }
    const img = h("img", { src: state.photo.url, alt: state.photo.name || "", class: "stage-img" });
    const boxes = ((state.result && state.result.Results) || []).map((r, i) => {
      const f = r.FaceRect || {};
      const W = state.photo.width;
      const H = state.photo.height;
      const box = h("div", { class: "face-box", "data-face": i + 1, title: t("search.face", { n: i + 1 }) },
        h("span", { class: "face-box-label" }, String(i + 1)));
      // Percentages of the image sent, so the boxes follow the photo at any displayed size.
      box.style.left = `${(Math.max(0, f.X) / W) * 100}%`;
      box.style.top = `${(Math.max(0, f.Y) / H) * 100}%`;
      box.style.width = `${(Math.min(f.Width, W - Math.max(0, f.X)) / W) * 100}%`;
      box.style.height = `${(Math.min(f.Height, H - Math.max(0, f.Y)) / H) * 100}%`;
      box.style.borderColor = BOX_COLORS[i % BOX_COLORS.length];
      box.firstChild.style.background = BOX_COLORS[i % BOX_COLORS.length];
      return box;
    });
    fill(stage, h("div", { class: "photo-stage", id: "search-stage" }, img, boxes),
      h("div", { class: "muted small" }, `${state.photo.name || ""} · ${state.photo.width}×${state.photo.height}`,
        state.photo.resized ? ` · ${t("photo.resized")}` : ""));
  }

  function drawResults() {
    if (state.error) { fill(results, state.error.code ? errorBox(state.error) : h("div", { class: "alert alert-warn" }, state.error.message)); return; }
    if (!state.result) { fill(results, empty(t("search.hint"))); return; }
    const r = state.result;
    const faces = r.Results || [];
    fill(results,
      h("div", { class: "result-meta" },
        h("span", {}, r.mode === "persons"
          ? t("search.metaPersons", { n: fmtNumber(r.PersonNum) })
          : t("search.metaFaces", { n: fmtNumber(r.FaceNum) })),
        h("span", { class: "badge" }, `${t("groups.model")} ${r.FaceModelVersion}`),
        h("span", { class: "muted small" }, "RequestId ", h("code", { id: "search-request-id" }, r.RequestId))),
      faces.length ? faces.map((face, i) => faceResult(face, i)) : empty(t("search.noFace")));
  }

  // Groups to search, all checked the first time.
  try {
    const groups = await callAll("ConsoleGetGroupList", {}, "GroupInfos", "GroupNum");
    groupBoxes = groups.map((g) => h("input", { type: "checkbox", value: g.GroupId, name: "GroupIds",
      checked: state.groupIds ? state.groupIds.has(g.GroupId) : true,
      onchange: () => { state.groupIds = new Set(groupBoxes.filter((b) => b.checked).map((b) => b.value)); } }));
    fill(groupsHost, ...(groups.length
      ? groups.map((g, i) => h("label", { class: "check-item" }, groupBoxes[i], h("span", {}, g.GroupName),
        h("code", { class: "muted" }, g.GroupId), h("span", { class: "badge" }, g.FaceModelVersion),
        h("span", { class: "muted small" }, t("search.groupCounts", { persons: fmtNumber(g.PersonNum), faces: fmtNumber(g.FaceNum) }))))
      : [empty(t("groups.none"))]));
  } catch (err) {
    fill(groupsHost, errorBox(err));
  }
}

function faceResult(face, i) {
  const color = BOX_COLORS[i % BOX_COLORS.length];
  const dot = h("span", { class: "face-dot" }, String(i + 1));
  dot.style.background = color;
  const cands = face.Candidates || [];
  let list;
  if (face.RetCode && face.RetCode !== 0) {
    list = h("div", { class: "alert alert-warn" }, `${retCodeText(face.RetCode)} (${face.RetCode})`);
  } else if (!cands.length) {
    list = empty(t("search.noCandidates"));
  } else {
    list = h("ol", { class: "candidates" }, cands.map((c, rank) => candidate(c, rank)));
  }
  return h("section", { class: "panel face-result", "data-face": i + 1 },
    h("h2", {}, dot, t("search.face", { n: i + 1 }),
      h("span", { class: "muted small" }, ` ${face.FaceRect ? `${face.FaceRect.Width}×${face.FaceRect.Height}` : ""}`)),
    list);
}

function candidate(c, rank) {
  const score = Number(c.Score) || 0;
  const tone = score >= SEARCH_MATCH ? "good" : score >= SEARCH_POSSIBLE ? "warn" : "low";
  const bar = h("div", { class: "score-bar" }, h("div", { class: `score-fill ${tone}` }));
  bar.firstChild.style.width = `${Math.max(0, Math.min(100, score))}%`;
  const groups = (c.PersonGroupInfos || []).map((g) => g.GroupId);
  return h("li", { class: "candidate", "data-person-id": c.PersonId, "data-score": score },
    h("span", { class: "rank" }, String(rank + 1)),
    c.FaceId ? faceThumb(c.FaceId, { alt: c.PersonName || c.PersonId }) : personThumb(c.PersonId),
    h("div", { class: "cand-main" },
      h("div", { class: "cand-name" }, c.PersonName || c.PersonId,
        c.Gender ? h("span", { class: "muted small" }, ` · ${genderLabel(c.Gender)}`) : null),
      h("div", { class: "cand-sub" }, h("code", {}, c.PersonId),
        groups.map((g) => h("a", { href: `#/groups/${encodeURIComponent(g)}`, class: "chip" }, g)))),
    h("div", { class: "cand-score" },
      h("div", { class: `score-value ${tone}` }, fmtNumber(score, 2)),
      bar,
      h("div", { class: "muted small" }, t(`search.${tone}`))));
}

// SearchPersons answers without a FaceId: show the person's first face.
function personThumb(personId) {
  const holder = h("span", { class: "thumb-holder" });
  call("GetPersonBaseInfo", { PersonId: personId })
    .then((r) => fill(holder, faceThumb((r.FaceIds || [])[0], { alt: r.PersonName })))
    .catch(() => fill(holder, faceThumb("", {})));
  return holder;
}

function clampInt(v, lo, hi, dflt) {
  const n = parseInt(v, 10);
  return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : dflt;
}

// ---------------- 1:1 compare ----------------

function comparePanel(panel) {
  const c = state.compare;
  const out = h("div", { class: "compare-result", id: "compare-result" });
  const side = (key, label) => {
    const preview = h("div", { class: "compare-preview" });
    const draw = () => fill(preview, c[key] ? h("img", { src: c[key].url, alt: c[key].name || "" }) : h("span", { class: "muted" }, label));
    draw();
    return h("section", { class: "panel compare-side" }, h("h2", {}, label),
      dropZone({
        compact: true, inputName: key === "a" ? "ImageA" : "ImageB",
        onFiles: async ([file]) => {
          try {
            const photo = await readPhoto(file);
            if (c[key]) URL.revokeObjectURL(c[key].url);
            c[key] = photo;
            c.error = null;
          } catch (err) {
            c[key] = null;
            c.error = err;
          }
          c.result = null;
          draw();
          drawResult();
        },
      }),
      preview);
  };
  const version = h("select", { id: "compare-version" },
    ["3.0", "2.0"].map((v) => h("option", { value: v, selected: c.version === v }, v)));
  const btn = h("button", { type: "button", class: "btn btn-primary", id: "compare-submit" }, t("compare.run"));
  btn.addEventListener("click", async () => {
    c.version = version.value;
    if (!c.a || !c.b) { c.error = { code: "", message: t("compare.needTwo") }; drawResult(); return; }
    btn.disabled = true;
    fill(out, spinner());
    try {
      c.result = await call("CompareFace", { ImageA: c.a.base64, ImageB: c.b.base64, FaceModelVersion: c.version });
      c.error = null;
    } catch (err) {
      c.result = null;
      c.error = err;
    } finally {
      btn.disabled = false;
    }
    drawResult();
  });

  function drawResult() {
    if (c.error) { fill(out, c.error.code ? errorBox(c.error) : h("div", { class: "alert alert-warn" }, c.error.message)); return; }
    if (!c.result) { fill(out, empty(t("compare.hint"))); return; }
    const v = c.result.FaceModelVersion || c.version;
    const bar = COMPARE_THRESHOLD[v] ?? 40;
    const same = c.result.Score >= bar;
    fill(out,
      h("div", { class: "compare-score" },
        h("div", { class: `big-score ${same ? "good" : "low"}`, id: "compare-score" }, fmtNumber(c.result.Score, 2)),
        h("div", { class: `verdict ${same ? "good" : "low"}` }, same ? t("compare.same") : t("compare.different"))),
      h("p", { class: "muted small" }, t("compare.note", { bar, v })),
      h("p", { class: "muted small" }, "RequestId ", h("code", {}, c.result.RequestId)));
  }

  fill(panel,
    h("div", { class: "compare-layout" }, side("a", t("compare.a")), side("b", t("compare.b"))),
    h("section", { class: "panel" },
      h("div", { class: "compare-controls" }, field(t("groups.model"), version), btn),
      out));
  drawResult();
}
