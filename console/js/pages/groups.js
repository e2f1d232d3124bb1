// Groups: the list (ConsoleGetGroupList), create (CreateGroup), edit (ModifyGroup), delete (DeleteGroup).

import { call } from "../api.js";
import { t } from "../i18n.js";
import { h, fmtNumber, fmtDateTime, errorBox, spinner, empty, pager, formDialog, confirmDialog, field, toast, fill } from "../ui.js";

const PAGE = 20;
let offset = 0;

export async function render(root) {
  const body = h("div", { class: "page-body" }, spinner());
  fill(root,
    h("div", { class: "page-head" },
      h("h1", {}, t("nav.groups")),
      h("div", { class: "page-tools" },
        h("button", { type: "button", class: "btn", onclick: () => render(root) }, t("common.refresh")),
        h("button", { type: "button", class: "btn btn-primary", id: "create-group",
          onclick: async () => { if (await createGroup()) render(root); } }, t("groups.create")))),
    body);

  let r;
  try {
    r = await call("ConsoleGetGroupList", { Offset: offset, Limit: PAGE });
  } catch (err) {
    // Past the end after deletions: go back to the first page.
    if (err.code && err.code.endsWith("OffsetExceed") && offset > 0) {
      offset = 0;
      return render(root);
    }
    fill(body, errorBox(err));
    return;
  }
  const groups = r.GroupInfos || [];
  if (!groups.length && offset > 0) {
    offset = 0;
    return render(root);
  }
  const refresh = () => render(root);
  fill(body,
    groups.length ? table(groups, refresh) : empty(t("groups.none")),
    pager({ offset, limit: PAGE, total: r.GroupNum || 0, onChange: (o) => { offset = o; refresh(); } }));
}

function table(groups, refresh) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table", id: "group-table" },
    h("thead", {}, h("tr", {},
      h("th", {}, t("groups.id")), h("th", {}, t("groups.name")), h("th", {}, t("groups.fields")),
      h("th", {}, t("groups.tag")), h("th", {}, t("groups.model")), h("th", {}, t("groups.created")),
      h("th", { class: "num" }, t("groups.persons")), h("th", { class: "num" }, t("groups.faces")),
      h("th", { class: "actions-col" }, t("common.actions")))),
    h("tbody", {}, groups.map((g) => h("tr", { class: "group-row", "data-group-id": g.GroupId },
      h("td", {}, h("a", { href: `#/groups/${encodeURIComponent(g.GroupId)}`, class: "group-link" }, h("code", {}, g.GroupId))),
      h("td", {}, h("a", { href: `#/groups/${encodeURIComponent(g.GroupId)}` }, g.GroupName)),
      h("td", {}, chips(g.GroupExDescriptions)),
      h("td", {}, g.Tag || h("span", { class: "muted" }, "–")),
      h("td", {}, h("span", { class: "badge" }, g.FaceModelVersion)),
      h("td", { class: "nowrap" }, fmtDateTime(g.CreationTimestamp)),
      h("td", { class: "num" }, fmtNumber(g.PersonNum)),
      h("td", { class: "num" }, fmtNumber(g.FaceNum)),
      h("td", { class: "actions-col" },
        h("button", { type: "button", class: "link-btn", onclick: async () => { if (await editGroup(g)) refresh(); } }, t("common.edit")),
        h("button", { type: "button", class: "link-btn danger", onclick: async () => { if (await deleteGroup(g)) refresh(); } }, t("common.delete"))))))));
}

export function chips(list) {
  const items = (list || []).filter((x) => x !== "");
  if (!items.length) return h("span", { class: "muted" }, "–");
  return h("span", { class: "chips" }, items.map((x) => h("span", { class: "chip" }, x)));
}

/** Up to five custom-field name inputs, with "add field". Returns {el, values()}. */
function fieldNames(existing = []) {
  const list = h("div", { class: "ex-fields" });
  const inputs = [];
  const add = h("button", { type: "button", class: "btn btn-sm add-field", onclick: () => addInput("") }, t("groups.addField"));
  function addInput(value, locked = false) {
    const input = h("input", { type: "text", name: "GroupExDescription", maxlength: 30, pattern: "[A-Za-z0-9_\\-]{1,30}", value,
      placeholder: t("groups.fieldPlaceholder", { n: inputs.length + 1 }), "data-index": inputs.length });
    input.dataset.original = locked ? value : "";
    inputs.push(input);
    list.append(h("div", { class: "ex-field" }, h("span", { class: "ex-index" }, `#${inputs.length}`), input));
    add.hidden = inputs.length >= 5;
    if (!locked) input.focus();
  }
  existing.forEach((v) => addInput(v, true));
  add.hidden = inputs.length >= 5;
  return {
    el: h("div", { class: "field" }, h("label", {}, t("groups.fields")), list, add, h("div", { class: "hint" }, t("groups.fieldsHint"))),
    inputs,
  };
}

async function createGroup() {
  const id = h("input", { type: "text", name: "GroupId", required: true, maxlength: 64, pattern: "[A-Za-z0-9\\-%@#&_]{1,64}", autocomplete: "off" });
  const name = h("input", { type: "text", name: "GroupName", required: true, maxlength: 60 });
  const tag = h("input", { type: "text", name: "Tag", maxlength: 40 });
  const version = h("select", { name: "FaceModelVersion" },
    h("option", { value: "3.0", selected: true }, "3.0"), h("option", { value: "2.0" }, "2.0"));
  const ex = fieldNames();
  const body = h("div", { class: "form-grid" },
    field(t("groups.id"), id, t("groups.idHint")),
    field(t("groups.name"), name),
    field(t("groups.tag"), tag),
    field(t("groups.model"), version, t("groups.modelHint")),
    ex.el);
  return formDialog({
    title: t("groups.create"), body, submitLabel: t("common.create"),
    onSubmit: async () => {
      const params = {
        GroupId: id.value.trim(), GroupName: name.value.trim(), FaceModelVersion: version.value,
        GroupExDescriptions: ex.inputs.map((i) => i.value.trim()).filter(Boolean),
      };
      if (tag.value.trim()) params.Tag = tag.value.trim();
      await call("CreateGroup", params);
      toast(t("groups.createdToast", { id: params.GroupId }));
      return true;
    },
  });
}

async function editGroup(g) {
  const name = h("input", { type: "text", name: "GroupName", required: true, maxlength: 60, value: g.GroupName });
  const tag = h("input", { type: "text", name: "Tag", maxlength: 40, value: g.Tag || "" });
  const ex = fieldNames(g.GroupExDescriptions || []);
  const body = h("div", { class: "form-grid" },
    field(t("groups.id"), h("input", { type: "text", value: g.GroupId, disabled: true })),
    field(t("groups.name"), name),
    field(t("groups.tag"), tag),
    ex.el);
  return formDialog({
    title: t("groups.edit", { id: g.GroupId }), body,
    onSubmit: async () => {
      const params = { GroupId: g.GroupId };
      if (name.value.trim() !== g.GroupName) params.GroupName = name.value.trim();
      if (tag.value.trim() !== (g.Tag || "")) params.Tag = tag.value.trim();
      const changes = ex.inputs
        .map((input, i) => ({ GroupExDescriptionIndex: i, GroupExDescription: input.value.trim(), before: (g.GroupExDescriptions || [])[i] }))
        .filter((c) => c.GroupExDescription !== "" && c.GroupExDescription !== c.before)
        .map(({ GroupExDescriptionIndex, GroupExDescription }) => ({ GroupExDescriptionIndex, GroupExDescription }));
      if (changes.length) params.GroupExDescriptionInfos = changes;
      if (Object.keys(params).length === 1) return true; // nothing changed
      await call("ModifyGroup", params);
      toast(t("common.saved"));
      return true;
    },
  });
}

async function deleteGroup(g) {
  return confirmDialog({
    title: t("groups.deleteTitle", { id: g.GroupId }),
    message: t("groups.deleteMessage", { name: g.GroupName, id: g.GroupId, persons: g.PersonNum }),
    warning: t("groups.deleteWarning"),
    action: async () => {
      await call("DeleteGroup", { GroupId: g.GroupId });
      toast(t("groups.deleted", { id: g.GroupId }));
    },
  });
}
