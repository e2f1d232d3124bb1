// The persons of one group: paged list with face thumbnails; create with a photo, edit, faces, copy, remove
// from the group, delete.

import { call, callAll } from "../api.js";
import { t } from "../i18n.js";
import {
  h, fmtNumber, fmtDateTime, errorBox, spinner, empty, pager, formDialog, confirmDialog, field, toast,
  genderLabel, genderSelect, readPhoto, dropZone, mapLimit, fill,
} from "../ui.js";
import { faceThumb } from "../thumbs.js";

const PAGE = 10;
const MAX_FACES = 5;
const MAX_IMAGES_PER_CALL = 4;
const offsets = new Map(); // GroupId -> offset, kept while the page is left and re-entered

export async function render(root, groupId) {
  const body = h("div", { class: "page-body" }, spinner());
  const title = h("h1", {}, groupId);
  const addBtn = h("button", { type: "button", class: "btn btn-primary", id: "create-person", disabled: true }, t("persons.create"));
  fill(root,
    h("nav", { class: "breadcrumb" }, h("a", { href: "#/groups" }, t("nav.groups")), h("span", {}, "/"), h("code", {}, groupId)),
    h("div", { class: "page-head" }, title,
      h("div", { class: "page-tools" },
        h("button", { type: "button", class: "btn", onclick: () => render(root, groupId) }, t("common.refresh")),
        addBtn)),
    body);

  let group;
  let list;
  const offset = offsets.get(groupId) || 0;
  try {
    [group, list] = await Promise.all([
      call("GetGroupInfo", { GroupId: groupId }),
      call("ConsoleGetPersonList", { GroupId: groupId, Offset: offset, Limit: PAGE }).catch((err) => {
        if (offset > 0 && err.code && err.code.endsWith("OffsetExceed")) return null;
        throw err;
      }),
    ]);
  } catch (err) {
    fill(body, errorBox(err));
    return;
  }
  const refresh = () => render(root, groupId);
  if (!list || (!(list.PersonInfos || []).length && offset > 0)) {
    offsets.set(groupId, 0);
    return refresh();
  }
  fill(title, group.GroupName, " ", h("span", { class: "badge" }, group.FaceModelVersion));
  addBtn.disabled = false;
  addBtn.addEventListener("click", async () => { if (await createPerson(group)) refresh(); });

  const persons = list.PersonInfos || [];
  const calibration = h("section", { class: "calibration", id: "calibration" });
  const calibrate = h("button", { type: "button", class: "btn btn-sm", id: "calibrate-group",
    onclick: () => showCalibration(groupId, calibration, calibrate) }, t("calibration.button"));
  fill(body,
    h("div", { class: "summary-line" },
      t("persons.summary", { persons: fmtNumber(list.PersonNum), faces: fmtNumber(list.FaceNum) }),
      group.Tag ? h("span", { class: "chip" }, group.Tag) : null, calibrate),
    calibration,
    persons.length ? table(group, persons, refresh) : empty(t("persons.none")),
    pager({ offset, limit: PAGE, total: list.PersonNum || 0, onChange: (o) => { offsets.set(groupId, o); refresh(); } }));
}

function table(group, persons, refresh) {
  const fields = group.GroupExDescriptions || [];
  const act = (label, fn, danger) => h("button", { type: "button", class: danger ? "link-btn danger" : "link-btn",
    onclick: async () => { if (await fn()) refresh(); } }, label);
  return h("div", { class: "table-wrap" }, h("table", { class: "table", id: "person-table" },
    h("thead", {}, h("tr", {},
      h("th", {}, t("persons.faces")), h("th", {}, t("persons.name")), h("th", {}, t("persons.id")),
      h("th", {}, t("persons.gender")),
      fields.map((f) => h("th", {}, f)),
      h("th", {}, t("persons.created")), h("th", { class: "actions-col" }, t("common.actions")))),
    h("tbody", {}, persons.map((p) => h("tr", { class: "person-row", "data-person-id": p.PersonId },
      h("td", {}, h("div", { class: "thumb-row" }, (p.FaceIds || []).map((id) => faceThumb(id, { alt: p.PersonName })))),
      h("td", { class: "strong" }, p.PersonName),
      h("td", {}, h("code", {}, p.PersonId)),
      h("td", {}, genderLabel(p.Gender)),
      fields.map((_, i) => h("td", {}, (p.PersonExDescriptions || [])[i] || h("span", { class: "muted" }, "–"))),
      h("td", { class: "nowrap" }, fmtDateTime(p.CreationTimestamp)),
      h("td", { class: "actions-col" },
        act(t("common.edit"), () => editPerson(group, p)),
        act(t("persons.manageFaces"), () => manageFaces(p)),
        act(t("persons.copy"), () => copyPerson(group, p)),
        act(t("persons.remove"), () => removeFromGroup(group, p), true),
        act(t("common.delete"), () => deletePerson(p), true)))))));
}

/** A photo picker with a preview; `get()` returns the read photo or null. */
function photoPicker() {
  let photo = null;
  const preview = h("div", { class: "photo-preview" });
  const zone = dropZone({
    compact: true, inputName: "Image",
    onFiles: async ([file]) => {
      try {
        photo = await readPhoto(file);
        fill(preview, h("img", { src: photo.url, alt: "" }), h("span", { class: "muted" }, file.name));
      } catch (err) {
        photo = null;
        fill(preview, errorBox(err));
      }
    },
  });
  return { el: h("div", { class: "field" }, h("label", {}, t("persons.photo")), zone, preview), get: () => photo };
}

function exFieldInputs(group, values = []) {
  return (group.GroupExDescriptions || []).map((name, i) => ({
    name, index: i,
    input: h("input", { type: "text", maxlength: 60, value: values[i] || "", name: "PersonExDescription", "data-index": i }),
  }));
}

async function createPerson(group) {
  const id = h("input", { type: "text", name: "PersonId", required: true, maxlength: 64, autocomplete: "off" });
  const name = h("input", { type: "text", name: "PersonName", required: true, maxlength: 60 });
  const gender = genderSelect(0);
  const ex = exFieldInputs(group);
  const photo = photoPicker();
  const body = h("div", { class: "form-grid" },
    field(t("persons.id"), id, t("persons.idHint")),
    field(t("persons.name"), name),
    field(t("persons.gender"), gender),
    ex.map((f) => field(f.name, f.input)),
    photo.el);
  return formDialog({
    title: t("persons.createIn", { group: group.GroupName }), body, submitLabel: t("common.create"), wide: true,
    onSubmit: async () => {
      const p = photo.get();
      if (!p) throw new Error(t("persons.photoRequired"));
      const params = {
        GroupId: group.GroupId, PersonId: id.value.trim(), PersonName: name.value.trim(),
        Gender: Number(gender.value), Image: p.base64,
      };
      const infos = ex.filter((f) => f.input.value.trim())
        .map((f) => ({ PersonExDescriptionIndex: f.index, PersonExDescription: f.input.value.trim() }));
      if (infos.length) params.PersonExDescriptionInfos = infos;
      const r = await call("CreatePerson", params);
      if (!r.FaceId && r.SimilarPersonId) throw new Error(t("persons.similarExists", { id: r.SimilarPersonId }));
      toast(t("persons.createdToast", { name: params.PersonName }));
      return true;
    },
  });
}

async function editPerson(group, p) {
  const name = h("input", { type: "text", name: "PersonName", required: true, maxlength: 60, value: p.PersonName });
  const gender = genderSelect(p.Gender || 0);
  const ex = exFieldInputs(group, p.PersonExDescriptions || []);
  const body = h("div", { class: "form-grid" },
    field(t("persons.id"), h("input", { type: "text", value: p.PersonId, disabled: true })),
    field(t("persons.name"), name),
    field(t("persons.gender"), gender),
    ex.length ? h("div", { class: "field-group" }, h("div", { class: "field-group-title" }, t("persons.customFields")),
      ex.map((f) => field(f.name, f.input))) : null);
  return formDialog({
    title: t("persons.edit", { name: p.PersonName }), body,
    onSubmit: async () => {
      const base = { GroupId: group.GroupId, PersonId: p.PersonId };
      if (name.value.trim() !== p.PersonName) base.PersonName = name.value.trim();
      if (Number(gender.value) !== (p.Gender || 0)) base.Gender = Number(gender.value);
      if (Object.keys(base).length > 2) await call("ConsoleModifyPersonBaseInfo", base);
      const infos = ex.filter((f) => f.input.value.trim() !== ((p.PersonExDescriptions || [])[f.index] || ""))
        .map((f) => ({ PersonExDescriptionIndex: f.index, PersonExDescription: f.input.value.trim() }));
      if (infos.length) {
        await call("ModifyPersonGroupInfo", { GroupId: group.GroupId, PersonId: p.PersonId, PersonExDescriptionInfos: infos });
      }
      toast(t("common.saved"));
      return true;
    },
  });
}

async function manageFaces(p) {
  let faceIds = [...(p.FaceIds || [])];
  let changed = false;
  const grid = h("div", { class: "face-grid" });
  const status = h("div", { class: "face-status" });
  const delBtn = h("button", { type: "button", class: "btn btn-danger btn-sm", disabled: true }, t("faces.deleteSelected"));
  const selected = new Set();
  let zoneHost = h("div", {});

  function drawGrid() {
    selected.clear();
    delBtn.disabled = true;
    fill(grid, ...faceIds.map((id) => {
      const box = h("input", { type: "checkbox", value: id, "aria-label": id,
        onchange: () => {
          if (box.checked) selected.add(id); else selected.delete(id);
          // Tencent never deletes a person's last face.
          delBtn.disabled = !selected.size || selected.size >= faceIds.length;
        } });
      return h("label", { class: "face-tile" }, faceThumb(id, { size: "lg" }), h("span", { class: "face-id" }, box, h("code", {}, id)));
    }));
    const room = Math.min(MAX_IMAGES_PER_CALL, MAX_FACES - faceIds.length);
    fill(zoneHost, room > 0
      ? dropZone({ multiple: true, compact: true, label: t("faces.add", { n: room }), onFiles: (files) => addFaces(files.slice(0, room)) })
      : h("div", { class: "muted" }, t("faces.full", { n: MAX_FACES })));
  }

  async function addFaces(files) {
    fill(status, h("div", { class: "loading" }, h("span", { class: "spin" }), t("faces.uploading")));
    try {
      const photos = await mapLimit(files, 2, readPhoto);
      const r = await call("CreateFace", { PersonId: p.PersonId, Images: photos.map((x) => x.base64) });
      changed = true;
      faceIds = faceIds.concat(r.SucFaceIds || []);
      const failures = (r.RetCode || []).map((code, i) => ({ code, name: files[i].name })).filter((x) => x.code !== 0);
      fill(status,
        h("div", { class: "alert alert-ok" }, t("faces.added", { n: r.SucFaceNum || 0 })),
        failures.map((f) => h("div", { class: "alert alert-warn" }, `${f.name}: ${retCodeText(f.code)} (${f.code})`)));
      drawGrid();
    } catch (err) {
      fill(status, errorBox(err));
    }
  }

  delBtn.addEventListener("click", async () => {
    const ids = [...selected];
    try {
      await call("DeleteFace", { PersonId: p.PersonId, FaceIds: ids });
      changed = true;
      faceIds = faceIds.filter((id) => !ids.includes(id));
      fill(status, h("div", { class: "alert alert-ok" }, t("faces.deleted", { n: ids.length })));
      drawGrid();
    } catch (err) {
      fill(status, errorBox(err));
    }
  });

  drawGrid();
  const body = h("div", {},
    h("p", { class: "muted" }, t("faces.hint", { n: MAX_FACES })),
    grid, h("div", { class: "face-actions" }, delBtn), zoneHost, status);
  await formDialog({ title: t("faces.title", { name: p.PersonName }), body, submitLabel: t("common.done"), wide: true });
  return changed;
}

export function retCodeText(code) {
  const known = [-1101, -1102, -1109, -1601, -1604, -1001];
  return known.includes(code) ? t(`retcode.${code}`) : t("retcode.other");
}

async function copyPerson(group, p) {
  const listHost = h("div", { class: "check-list" }, spinner());
  const boxes = [];
  const body = h("div", {}, h("p", {}, t("persons.copyHint", { name: p.PersonName })), listHost);
  const load = (async () => {
    try {
      const [groups, mine] = await Promise.all([
        callAll("ConsoleGetGroupList", {}, "GroupInfos", "GroupNum"),
        call("GetPersonGroupInfo", { PersonId: p.PersonId, Offset: 0, Limit: 100 }),
      ]);
      const member = new Set((mine.PersonGroupInfos || []).map((x) => x.GroupId));
      const items = groups.map((g) => {
        const already = member.has(g.GroupId);
        const otherVersion = g.FaceModelVersion !== group.FaceModelVersion;
        const box = h("input", { type: "checkbox", value: g.GroupId, checked: already, disabled: already || otherVersion });
        if (!already && !otherVersion) boxes.push(box);
        return h("label", { class: ["check-item", already || otherVersion ? "disabled" : null] }, box,
          h("span", {}, g.GroupName), h("code", { class: "muted" }, g.GroupId),
          already ? h("span", { class: "badge" }, t("persons.alreadyIn")) : null,
          otherVersion ? h("span", { class: "badge" }, t("persons.otherVersion", { v: g.FaceModelVersion })) : null);
      });
      fill(listHost, ...(items.length ? items : [empty(t("groups.none"))]));
    } catch (err) {
      fill(listHost, errorBox(err));
    }
  })();
  return formDialog({
    title: t("persons.copyTitle", { name: p.PersonName }), body, submitLabel: t("persons.copy"),
    onSubmit: async () => {
      await load;
      const ids = boxes.filter((b) => b.checked).map((b) => b.value);
      if (!ids.length) throw new Error(t("persons.pickGroup"));
      const r = await call("CopyPerson", { PersonId: p.PersonId, GroupIds: ids });
      toast(t("persons.copied", { n: r.SucGroupNum ?? ids.length }));
      return true;
    },
  });
}

function removeFromGroup(group, p) {
  return confirmDialog({
    title: t("persons.removeTitle"),
    message: t("persons.removeMessage", { name: p.PersonName, id: p.PersonId, group: group.GroupName }),
    warning: t("persons.removeWarning"),
    confirmLabel: t("persons.remove"),
    action: async () => {
      await call("DeletePersonFromGroup", { GroupId: group.GroupId, PersonId: p.PersonId });
      toast(t("persons.removed", { name: p.PersonName }));
    },
  });
}

function deletePerson(p) {
  return confirmDialog({
    title: t("persons.deleteTitle"),
    message: t("persons.deleteMessage", { name: p.PersonName, id: p.PersonId }),
    warning: t("persons.deleteWarning"),
    action: async () => {
      await call("DeletePerson", { PersonId: p.PersonId });
      toast(t("persons.deleted", { name: p.PersonName }));
    },
  });
}

/** What a score means for this group's people (ConsoleCalibrateGroup): the false-accept rate at each score
 * and the score for 1e-3 .. 1e-6, over the pairs of faces of different persons. */
async function showCalibration(groupId, host, button) {
  button.disabled = true;
  fill(host, spinner());
  let r;
  try {
    r = await call("ConsoleCalibrateGroup", { GroupId: groupId });
  } catch (err) {
    fill(host, errorBox(err));
    return;
  } finally {
    button.disabled = false;
  }
  const rate = (x) => (x === 0 ? "0" : x.toExponential(1));
  fill(host,
    h("h2", {}, t("calibration.title")),
    h("p", { class: "hint", id: "calibration-summary" }, t("calibration.summary", {
      persons: fmtNumber(r.PersonNum), faces: fmtNumber(r.FaceNum), pairs: fmtNumber(r.ImpostorPairs),
    }), r.FacesCompared < r.FaceNum ? " " + t("calibration.sampled", { n: fmtNumber(r.FacesCompared) }) : ""),
    (r.Scales || []).map((scale) => h("div", { class: "calibration-scale", "data-scale": scale.Scale },
      h("h3", {}, t(`calibration.scale.${scale.Scale}`)),
      h("div", { class: "table-wrap" }, h("table", { class: "table calibration-rates" },
        h("thead", {}, h("tr", {}, h("th", {}, t("calibration.rate")), h("th", { class: "num" }, t("calibration.score")),
          h("th", { class: "num" }, t("calibration.pairs")))),
        h("tbody", {}, (scale.ScoreAtRate || []).map((row) => h("tr", { "data-rate": row.Rate },
          h("td", {}, rate(row.Rate)),
          h("td", { class: "num" }, row.Score === null || row.Score === undefined
            ? t(r.ImpostorPairs * row.Rate < 10 ? "calibration.tooFew" : "calibration.unreached")
            : row.Score.toFixed(2)),
          h("td", { class: "num" }, row.Score === null || row.Score === undefined ? "–" : fmtNumber(row.Pairs))))))),
      h("div", { class: "table-wrap" }, h("table", { class: "table calibration-scores" },
        h("thead", {}, h("tr", {}, h("th", { class: "num" }, t("calibration.score")),
          h("th", { class: "num" }, t("calibration.pairs")), h("th", { class: "num" }, t("calibration.far")))),
        h("tbody", {}, (scale.AtScore || []).map((row) => h("tr", { "data-score": row.Score },
          h("td", { class: "num" }, row.Score), h("td", { class: "num" }, fmtNumber(row.Pairs)),
          h("td", { class: "num" }, rate(row.Rate))))))))),
    h("p", { class: "hint" }, t("calibration.hint")));
}
