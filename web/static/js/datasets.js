// Datasets page: each registered dataset with its classes and their editable colours (saved on
// the dataset, and following colour changes saved on other pages through `dataset` events), its
// stored inspection report (warnings and errors in plain sight, the full report on demand) and a
// few sample image/mask pairs (masks are class-index PNGs coloured here); and the register form.

import { Palette } from "./class_palette.js";
import { byId, el, say } from "./dom.js";
import * as forms from "./forms.js";
import { api } from "./http.js";
import { subscribe } from "./live.js";
import { paintClasses } from "./mask_canvas.js";
import { datasetFacts } from "./pure/dataset_facts.js";
import { apiProblems } from "./pure/form_values.js";
import { percent } from "./pure/format.js";
import { pageRights } from "./rights.js";
import { reportBadge } from "./widgets.js";

/** @type {Map<number, Palette>} by dataset id */
const palettes = new Map();

const SAMPLES_PER_LOAD = 6;
const $ = byId;
const list = $("dataset-list");
const message = $("datasets-message");
const rights = pageRights();

// --- one dataset -----------------------------------------------------------------------------

function rawValue(value) {
  return Array.isArray(value) ? `(${value.join(", ")})` : String(value);
}

// One row per class; its colour is an <input type=color> labelled with the class name.
function classTable(dataset, report, palette) {
  const byIndex = new Map((report.classes || []).map((item) => [item.index, item]));
  const inputs = [];
  const table = el("table", { class: "classes-table" },
    el("caption", { class: "visually-hidden" }, `Classes of ${dataset.name}`),
    el("thead", {}, el("tr", {},
      el("th", {}, "Class"), el("th", { class: "num" }, "Index"), el("th", {}, "Raw value"),
      el("th", { class: "num" }, "Pixels"), el("th", { class: "num" }, "Images"))),
    el("tbody", {}, dataset.class_names.map((name, index) => {
      const item = byIndex.get(index) || {};
      const colorId = `dataset-${dataset.id}-color-${index}`;
      const input = el("input", {
        type: "color", id: colorId, class: "class-color", value: palette.colors[index],
        "data-class-index": index, disabled: !palette.editable,
        title: palette.editable ? `Change the colour of ${name}` : `The colour of ${name}`,
      });
      input.addEventListener("input", () => palette.setColor(index, input.value));
      inputs.push(input);
      return el("tr", {},
        el("td", {}, el("span", { class: "class-cell" }, input, el("label", { for: colorId }, name))),
        el("td", { class: "num" }, String(index)),
        el("td", {}, item.value === undefined ? "–" : rawValue(item.value)),
        el("td", { class: "num" }, percent(item.pixel_share)),
        el("td", { class: "num" }, item.images_with_class === undefined ? "–" : String(item.images_with_class)));
    })));
  palette.onChange(() => palette.colors.forEach((color, index) => {
    if (inputs[index] && inputs[index].value !== color) inputs[index].value = color;
  }));
  return table;
}

function colorStatus(palette) {
  const line = el("p", { class: "legend-status muted", "aria-live": "polite" });
  palette.onStatus((text, isError) => {
    line.textContent = text;
    line.classList.toggle("error-text", isError);
  });
  return line;
}

function notes(report) {
  const box = el("div", { class: "report-notes" });
  for (const [title, items, kind] of [["Errors", report.errors || [], "error-text"], ["Warnings", report.warnings || [], "warn-text"]]) {
    if (!items.length) continue;
    box.append(el("div", { class: `notes ${kind}` }, el("strong", {}, title),
      el("ul", {}, items.map((item) => el("li", {}, item)))));
  }
  if (!box.childElementCount) box.append(el("p", { class: "muted" }, "The inspection found no problems."));
  return box;
}

function fullReport(report) {
  const facts = [
    ["Root", report.root], ["Layout", report.layout], ["Pairs", report.num_pairs],
    ["Train / val", report.num_train !== undefined ? `${report.num_train} / ${report.num_val}` : undefined],
    ["Image dtype", report.image_dtype], ["Channels", report.in_channels],
    ["Mask encoding", report.encoding ? report.encoding.mode : undefined],
    ["Mask suffix", report.mask_suffix || "none"],
    ["Ignored pixels", percent(report.ignored_share)],
    ["Unmatched images", (report.unmatched_images || []).length],
    ["Unmatched masks", (report.unmatched_masks || []).length],
    ["Size mismatches", (report.size_mismatches || []).length],
    ["Unreadable files", (report.unreadable || []).length],
  ].filter(([, value]) => value !== undefined && value !== null);
  return el("details", { class: "full-report" },
    el("summary", {}, "Full inspection report"),
    el("dl", { class: "facts-list" }, facts.flatMap(([key, value]) => [el("dt", {}, key), el("dd", {}, String(value))])),
    el("pre", { class: "code" }, JSON.stringify(report, null, 2)));
}

function sampleFigure(palette, sample, overlaid) {
  const image = el("img", { src: `${sample.image_url}`, alt: `Image ${sample.name}`, loading: "lazy", width: 128, height: 128 });
  const canvas = el("canvas", { class: "mask", role: "img", "aria-label": `Mask of ${sample.name}`, width: 128, height: 128 });
  const figure = el("figure", { class: "sample", "data-sample": sample.index },
    el("div", { class: "sample-views" },
      el("div", { class: "view image-view" }, image),
      el("div", { class: "view mask-view" }, canvas)),
    el("figcaption", { title: sample.name }, sample.name));
  canvas.dataset.maskUrl = sample.mask_url;
  paintMask(canvas, palette, overlaid)
    .then(() => { figure.dataset.ready = "true"; })
    .catch((error) => { figure.append(el("p", { class: "error-text" }, error.message)); });
  return figure;
}

// Over the image, class 0 (background) is left see-through.
function paintMask(canvas, palette, overlaid) {
  return paintClasses(canvas, canvas.dataset.maskUrl, palette.colors.slice(), overlaid ? [0] : []);
}

function repaintMasks(grid, palette) {
  const overlaid = grid.classList.contains("overlaid");
  for (const canvas of grid.querySelectorAll("canvas.mask")) {
    paintMask(canvas, palette, overlaid).catch(() => {}); // the first paint showed any error
  }
}

async function loadSamples(dataset, palette, grid, moreButton) {
  const offset = grid.childElementCount;
  moreButton.disabled = true;
  try {
    const page = await api(`/api/v1/datasets/${dataset.id}/samples?offset=${offset}&limit=${SAMPLES_PER_LOAD}`);
    const overlaid = grid.classList.contains("overlaid");
    for (const sample of page.items) grid.append(sampleFigure(palette, sample, overlaid));
    moreButton.hidden = grid.childElementCount >= page.total;
    moreButton.textContent = `Show more samples (${grid.childElementCount} of ${page.total})`;
  } catch (error) {
    grid.after(el("p", { class: "error-text" }, `Cannot show samples: ${error.message}`));
    moreButton.hidden = true;
  } finally {
    moreButton.disabled = false;
  }
}

function card(dataset, report) {
  const palette = new Palette({
    names: dataset.class_names, colors: dataset.class_colors, datasetId: dataset.id,
    datasetName: dataset.name, savedCount: dataset.num_classes,
  });
  palettes.set(dataset.id, palette);
  const grid = el("div", { class: "sample-grid" });
  palette.onChange(() => repaintMasks(grid, palette));
  const more = el("button", { type: "button", hidden: true }, "Show more samples");
  more.addEventListener("click", () => loadSamples(dataset, palette, grid, more));
  const overlayId = `overlay-${dataset.id}`;
  const overlay = el("input", { type: "checkbox", id: overlayId });
  overlay.addEventListener("change", () => {
    grid.classList.toggle("overlaid", overlay.checked);
    repaintMasks(grid, palette);
  });
  const article = el("article", { class: "panel dataset", "data-dataset": dataset.name, id: `dataset-${dataset.id}`, "aria-labelledby": `dataset-title-${dataset.id}` },
    el("header", { class: "dataset-head" },
      el("h2", { id: `dataset-title-${dataset.id}`, tabindex: "-1" }, dataset.name),
      reportBadge(report),
      el("span", { class: "spacer" }),
      el("a", { href: `/?dataset=${encodeURIComponent(dataset.name)}` }, "Runs on it"),
      rights.canWrite && el("a", { class: "button", href: `/runs/new?dataset=${encodeURIComponent(dataset.name)}` }, "New run")),
    el("p", { class: "facts" }, datasetFacts(dataset, report).join(" · ")),
    el("p", { class: "path" }, el("code", {}, dataset.path)),
    el("div", { class: "dataset-body" },
      el("div", { class: "classes-block" }, classTable(dataset, report, palette), colorStatus(palette)),
      notes(report)),
    el("div", { class: "samples-head" },
      el("h3", {}, "Samples"),
      el("label", { class: "check-row", for: overlayId }, overlay, "Overlay masks on images (background see-through)")),
    grid, more,
    fullReport(report));
  loadSamples(dataset, palette, grid, more);
  return article;
}

// Colours saved on another page (or by the API); events wait until the cards are built.
let pendingEvents = [];
function onDatasetEvent(event) {
  if (pendingEvents) pendingEvents.push(event);
  else palettes.get(event.dataset_id)?.applyEvent(event);
}

async function loadAll() {
  try {
    const summaries = await api("/api/v1/datasets");
    const full = await Promise.all(summaries.items.map((item) => api(`/api/v1/datasets/${item.id}`)));
    list.replaceChildren(...full.map((dataset) => card(dataset, dataset.report || {})));
    if (!full.length) {
      list.append(el("div", { class: "panel empty-state" },
        el("p", {}, rights.canWrite
          ? "No dataset is registered yet. Register a folder with the form: it needs images/ and masks/ folders, a Pascal VOC layout or one mask folder per class."
          : "No dataset is registered yet. Members and admins register them; they show here.")));
    }
  } catch (error) {
    list.replaceChildren(el("p", { class: "error-text" }, `Cannot load the datasets: ${error.message}`));
  } finally {
    list.removeAttribute("aria-busy");
    const waiting = pendingEvents;
    pendingEvents = null;
    for (const event of waiting) onDatasetEvent(event);
  }
}

// --- the register form -----------------------------------------------------------------------

// Only users who may write get the form (base.html says whether this one may).
function registerForm() {
  const roots = $("register-form").dataset.datasetRoots || "";
  const fields = new Map();
  for (const controller of [
    forms.textField({ name: "name", id: "register-name", label: "Name",
      help: "Letters, digits, '.', '_' and '-'; runs refer to the dataset by it", attributes: { maxlength: 100, placeholder: "e.g. carvana" } }),
    forms.textField({ name: "path", id: "register-path", label: "Folder on the server",
      help: `Absolute, or relative to a dataset root (${roots})`, attributes: { placeholder: "/data/carvana" } }),
    forms.selectField({ name: "layout", id: "register-layout", label: "Layout",
      help: "auto detects images/ + masks/, Pascal VOC or one mask folder per class",
      options: ["auto", "images-masks", "voc", "class-folders"] }),
    forms.textField({ name: "mask_suffix", id: "register-mask-suffix", label: "Mask suffix", nullable: true,
      help: "Suffix of mask file names, e.g. _mask; detected when empty", attributes: { placeholder: "detected" } }),
  ]) {
    fields.set(controller.name, controller);
    $("register-fields").append(controller.element);
  }
  fields.get("layout").set("auto");
  const errors = new forms.ErrorDisplay($("register-errors"), (field) => fields.get(field.split(".")[0]) || null);

  $("register-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.clear();
    say(message, "");
    const body = {};
    const problems = [];
    for (const [name, controller] of fields) {
      const result = controller.get();
      if ("problem" in result) problems.push({ field: name, message: result.problem });
      else body[name] = result.value;
    }
    if (!body.name) problems.push({ field: "name", message: "give the dataset a name" });
    if (!body.path) problems.push({ field: "path", message: "give the dataset's folder on the server" });
    if (problems.length) {
      errors.show(problems);
      return;
    }
    const button = $("register-submit", HTMLButtonElement);
    button.disabled = true;
    button.textContent = "Inspecting…";
    try {
      const dataset = await api("/api/v1/datasets", { method: "POST", json: body });
      list.querySelector(".empty-state")?.remove();
      const article = card(dataset, dataset.report || {});
      list.prepend(article);
      for (const controller of fields.values()) controller.set(null);
      fields.get("layout").set("auto");
      say(message, `Registered ${dataset.name}: ${datasetFacts(dataset, dataset.report).join(" · ")}.`, "ok");
      article.querySelector("h2").focus();
    } catch (error) {
      const problemsFound = error.status === 409 ? [{ field: "name", message: error.message }] : apiProblems(error, "path");
      const title = error.code === "dataset_rejected" ? "The folder failed inspection" : undefined;
      errors.show(problemsFound, title);
    } finally {
      button.disabled = false;
      button.textContent = "Inspect and register";
    }
  });
}

if (rights.canWrite) registerForm();

subscribe("/api/v1/events?kind=dataset", onDatasetEvent);
loadAll();
