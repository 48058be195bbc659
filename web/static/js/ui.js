// Small helpers shared by the runs, new-run, datasets and workers pages: relative times, a
// confirm dialog, status messages, class colour swatches and class-index mask colouring.
"use strict";

const segtrackUi = (() => {
  const { el } = segtrack;

  // "12 s", "4 min", "3 h", "2 d" for a number of seconds.
  function shortDuration(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  function secondsSince(iso, now = Date.now()) {
    return iso ? (now - Date.parse(iso)) / 1000 : null;
  }

  // A <time> element showing "3 min ago" with the full date as its tooltip.
  function timeAgo(iso) {
    if (!iso) return el("span", { class: "muted" }, "–");
    const node = el("time", { datetime: iso, title: segtrack.formatTime(iso), "data-ago": "" });
    node.textContent = `${shortDuration(secondsSince(iso))} ago`;
    return node;
  }

  // Refresh every timeAgo() element under `root` (called by a page's one-second ticker).
  function refreshTimes(root = document) {
    const now = Date.now();
    for (const node of root.querySelectorAll("time[data-ago]")) {
      node.textContent = `${shortDuration(secondsSince(node.getAttribute("datetime"), now))} ago`;
    }
  }

  function statusBadge(status) {
    return el("span", { class: `status status-${status}`, "data-status": status }, status);
  }

  // Show `text` in a message region (role=status or alert); kind is "ok", "error" or "info".
  function say(region, text, kind = "info") {
    region.textContent = text;
    region.dataset.kind = kind;
    region.hidden = !text;
  }

  // A modal yes/no question on a <dialog>; resolves true when confirmed.
  function confirmAction({ title, body, confirmLabel = "Confirm", dismissLabel = "Cancel", danger = false }) {
    return new Promise((resolve) => {
      const yes = el("button", { type: "submit", value: "yes", class: danger ? "danger" : "primary" }, confirmLabel);
      const no = el("button", { type: "submit", value: "no", autofocus: true }, dismissLabel);
      const dialog = el(
        "dialog",
        { class: "confirm", "aria-labelledby": "confirm-title" },
        el(
          "form",
          { method: "dialog" },
          el("h2", { id: "confirm-title" }, title),
          ...(Array.isArray(body) ? body : [body]).map((line) => el("p", {}, line)),
          el("div", { class: "actions" }, no, yes),
        ),
      );
      dialog.addEventListener("close", () => {
        resolve(dialog.returnValue === "yes");
        dialog.remove();
      });
      document.body.append(dialog);
      dialog.showModal();
    });
  }

  function swatch(color, label) {
    return el("span", { class: "swatch", style: `background:${safeColor(color)}`, title: label || color, "aria-hidden": "true" });
  }

  // Only '#rrggbb' reaches a style attribute.
  function safeColor(color) {
    return /^#[0-9a-fA-F]{6}$/.test(color || "") ? color : "#808080";
  }

  function hexToRgb(color) {
    const value = parseInt(safeColor(color).slice(1), 16);
    return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
  }

  // The classes as a list of colour swatches with their names.
  function classList(names, colors) {
    return el(
      "ul",
      { class: "class-list" },
      names.map((name, index) => el("li", {}, swatch(colors[index], name), el("span", {}, name))),
    );
  }

  // Short facts of a dataset from its stored inspection report.
  function datasetFacts(dataset, report = {}) {
    const facts = [`${dataset.num_pairs} pairs`];
    if (report.num_train !== undefined) facts.push(`${report.num_train} train / ${report.num_val} val`);
    facts.push(`${dataset.num_classes} classes`, dataset.layout);
    const sizes = report.image_sizes;
    if (sizes && sizes.min_height) {
      facts.push(sizes.all_equal ? `${sizes.min_height}×${sizes.min_width} px`
        : `${sizes.min_height}×${sizes.min_width} to ${sizes.max_height}×${sizes.max_width} px`);
    }
    if (report.in_channels) facts.push(`${report.in_channels} channel${report.in_channels === 1 ? "" : "s"}`);
    return facts;
  }

  // "OK", "2 warnings" or "1 error, 2 warnings" as a badge.
  function reportBadge(report = {}) {
    const errors = (report.errors || []).length;
    const warnings = (report.warnings || []).length;
    const parts = [];
    if (errors) parts.push(`${errors} error${errors === 1 ? "" : "s"}`);
    if (warnings) parts.push(`${warnings} warning${warnings === 1 ? "" : "s"}`);
    const kind = errors ? "bad" : warnings ? "warn" : "ok";
    return el("span", { class: `report-badge report-${kind}` }, parts.join(", ") || "no warnings");
  }

  // Loaded images by URL, so repainting a mask in new colours does not load it again.
  const images = new Map();
  const IMAGE_CACHE_LIMIT = 300;

  function loadImage(url) {
    let promise = images.get(url);
    if (promise) return promise;
    promise = new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => resolve(image);
      image.onerror = () => reject(new Error(`could not load ${url}`));
      image.src = url;
    });
    promise.catch(() => images.delete(url));
    images.set(url, promise);
    if (images.size > IMAGE_CACHE_LIMIT) images.delete(images.keys().next().value);
    return promise;
  }

  // Paint a class-index mask PNG (grey value = class index, 255 = ignored) onto a canvas with
  // the classes' colours; ignored pixels, and classes listed in `clear`, stay transparent.
  async function colorMask(canvas, url, colors, clear = []) {
    const image = await loadImage(url);
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(image, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
    const table = colors.map((color, index) => (clear.includes(index) ? null : hexToRgb(color)));
    const data = pixels.data;
    for (let i = 0; i < data.length; i += 4) {
      const rgb = table[data[i]];
      if (rgb) {
        data[i] = rgb[0]; data[i + 1] = rgb[1]; data[i + 2] = rgb[2]; data[i + 3] = 255;
      } else {
        data[i + 3] = 0;
      }
    }
    context.putImageData(pixels, 0, 0);
    return canvas;
  }

  // Call `fn` at most once per `ms`, after the last call.
  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  return {
    shortDuration, secondsSince, timeAgo, refreshTimes, statusBadge, say, confirmAction, swatch,
    safeColor, classList, datasetFacts, reportBadge, colorMask, debounce,
  };
})();
