// Mask previews painted in the browser: class-index PNGs (255 = ignore) coloured with the class
// palette, overlays on the image, an error view (false positives / false negatives), and the class
// legend whose colours can be edited, are remembered per dataset and follow other open pages.
"use strict";

const segtrackMasks = (() => {
  const { el, api } = segtrack;
  const IGNORE = 255;
  const IGNORE_RGBA = [150, 150, 150, 255];
  const UNKNOWN_RGBA = [255, 255, 255, 255];
  const ERROR_COLORS = {
    fp: { rgb: [255, 0, 255], label: "false positive: predicted a class the truth does not have" },
    fn: { rgb: [0, 220, 255], label: "false negative: a truth class predicted as background" },
    both: { rgb: [255, 200, 0], label: "wrong class: predicted one foreground class for another" },
    ignore: { rgb: IGNORE_RGBA.slice(0, 3), label: "ignored pixels (255)" },
  };

  // The trainer's default palette (trainer/colors.py), for runs without a registered dataset.
  const FIRST_COLORS = ["#000000", "#e6194b", "#3cb44b", "#0082c8", "#ffe119", "#f58230",
    "#911eb4", "#46f0f0", "#f032e6", "#d2f53c", "#fabed4", "#008080"];

  function hsvToHex(h, s, v) {
    const i = Math.floor(h * 6);
    const f = h * 6 - i;
    const p = v * (1 - s);
    const q = v * (1 - f * s);
    const t = v * (1 - (1 - f) * s);
    const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
    return "#" + [r, g, b].map((c) => Math.round(c * 255).toString(16).padStart(2, "0")).join("");
  }

  function defaultPalette(count) {
    const colors = FIRST_COLORS.slice(0, count);
    let hue = 0;
    while (colors.length < count) {
      hue = (hue + 0.618033988749895) % 1;
      colors.push(hsvToHex(hue, 0.75, 0.95));
    }
    return colors;
  }

  function hexToRgb(hex) {
    const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
    return match ? match.slice(1).map((part) => parseInt(part, 16)) : [0, 0, 0];
  }

  // --- decoding -------------------------------------------------------------------------------

  const decoded = new Map();
  const CACHE_LIMIT = 400;

  // RGBA pixels of a PNG exactly as stored: no colour management, so a class index of 3 reads 3.
  async function decode(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`could not load ${url} (${response.status})`);
    const bitmap = await createImageBitmap(await response.blob(), {
      colorSpaceConversion: "none", premultiplyAlpha: "none",
    });
    const canvas = document.createElement("canvas");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    bitmap.close();
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    return { width: canvas.width, height: canvas.height, rgba: data };
  }

  /** Decoded PNG {width, height, rgba}, cached by URL (preview URLs never change content). */
  function load(url) {
    let promise = decoded.get(url);
    if (promise) {
      decoded.delete(url);
      decoded.set(url, promise);
      return promise;
    }
    promise = decode(url);
    promise.catch(() => decoded.delete(url));
    decoded.set(url, promise);
    if (decoded.size > CACHE_LIMIT) decoded.delete(decoded.keys().next().value);
    return promise;
  }

  // Class indices of a mask PNG (grey or palette PNGs decode to R = G = B = index).
  function indices(image) {
    if (!image.indices) {
      const out = new Uint8Array(image.width * image.height);
      for (let i = 0; i < out.length; i++) out[i] = image.rgba[i * 4];
      image.indices = out;
    }
    return image.indices;
  }

  // The image's RGBA resampled (nearest) to width x height when the sizes differ.
  function resized(image, width, height) {
    if (image.width === width && image.height === height) return image.rgba;
    const out = new Uint8ClampedArray(width * height * 4);
    for (let y = 0; y < height; y++) {
      const sy = Math.min(image.height - 1, Math.floor((y * image.height) / height));
      for (let x = 0; x < width; x++) {
        const sx = Math.min(image.width - 1, Math.floor((x * image.width) / width));
        out.set(image.rgba.subarray((sy * image.width + sx) * 4, (sy * image.width + sx) * 4 + 4), (y * width + x) * 4);
      }
    }
    return out;
  }

  // --- painting -------------------------------------------------------------------------------

  function lookupTable(colors) {
    const table = new Uint8ClampedArray(256 * 4);
    for (let i = 0; i < 256; i++) table.set(UNKNOWN_RGBA, i * 4);
    colors.forEach((color, i) => { if (i < IGNORE) table.set([...hexToRgb(color), 255], i * 4); });
    table.set(IGNORE_RGBA, IGNORE * 4);
    return table;
  }

  function put(canvas, width, height, pixels) {
    canvas.width = width;
    canvas.height = height;
    canvas.getContext("2d").putImageData(new ImageData(pixels, width, height), 0, 0);
  }

  function paintImage(canvas, image) {
    put(canvas, image.width, image.height, new Uint8ClampedArray(image.rgba));
  }

  function paintMask(canvas, mask, table) {
    const labels = indices(mask);
    const out = new Uint8ClampedArray(labels.length * 4);
    for (let i = 0; i < labels.length; i++) {
      const from = labels[i] * 4;
      out[i * 4] = table[from]; out[i * 4 + 1] = table[from + 1];
      out[i * 4 + 2] = table[from + 2]; out[i * 4 + 3] = 255;
    }
    put(canvas, mask.width, mask.height, out);
  }

  // The image with every shown class blended in at `opacity`; hidden classes and ignored pixels
  // leave the image as it is.
  function paintOverlay(canvas, image, mask, table, opacity, hidden) {
    const labels = indices(mask);
    const base = resized(image, mask.width, mask.height);
    const out = new Uint8ClampedArray(base);
    for (let i = 0; i < labels.length; i++) {
      const label = labels[i];
      if (label === IGNORE || hidden.has(label)) continue;
      const o = i * 4;
      const t = label * 4;
      out[o] = base[o] + (table[t] - base[o]) * opacity;
      out[o + 1] = base[o + 1] + (table[t + 1] - base[o + 1]) * opacity;
      out[o + 2] = base[o + 2] + (table[t + 2] - base[o + 2]) * opacity;
      out[o + 3] = 255;
    }
    put(canvas, mask.width, mask.height, out);
  }

  // Errors over a dimmed grey image: class 0 is background. False positive: predicted a
  // foreground class where the truth is background; false negative: truth foreground predicted
  // as background; wrong class: both foreground but different (it is both at once).
  function paintErrors(canvas, image, truth, prediction) {
    const truthLabels = indices(truth);
    const predicted = indices(prediction);
    const base = resized(image, truth.width, truth.height);
    const out = new Uint8ClampedArray(truthLabels.length * 4);
    const counts = { fp: 0, fn: 0, both: 0, ignore: 0 };
    for (let i = 0; i < truthLabels.length; i++) {
      const o = i * 4;
      const t = truthLabels[i];
      const p = predicted[i];
      let kind = null;
      if (t === IGNORE) kind = "ignore";
      else if (t !== p) kind = t === 0 ? "fp" : p === 0 ? "fn" : "both";
      if (kind) {
        counts[kind] += 1;
        out.set(ERROR_COLORS[kind].rgb, o);
      } else {
        const grey = 0.35 * (0.299 * base[o] + 0.587 * base[o + 1] + 0.114 * base[o + 2]) + 20;
        out[o] = grey; out[o + 1] = grey; out[o + 2] = grey;
      }
      out[o + 3] = 255;
    }
    put(canvas, truth.width, truth.height, out);
    return counts;
  }

  // --- tiles ----------------------------------------------------------------------------------

  const KIND_TITLES = {
    image: "Image", truth: "Truth", prediction: "Prediction", overlay: "Overlay", errors: "Errors",
  };

  /**
   * One canvas showing `kind` of a preview sample ({image_url, truth_url, prediction_url}).
   * `view` holds what every tile shares: {palette, opacity}. Returns {element, canvas, ready,
   * repaint()}; repaint() redraws with the view's current colours and opacity.
   */
  function tile(kind, sample, view, caption) {
    const canvas = el("canvas", { class: `mask-canvas kind-${kind}`, width: 1, height: 1, "data-kind": kind, role: "img" });
    const status = el("span", { class: "tile-status" }, "loading…");
    const element = el("figure", { class: "mask-tile" }, canvas, el("figcaption", {}, caption || KIND_TITLES[kind], status));
    const needs = {
      image: ["image_url"], truth: ["truth_url"], prediction: ["prediction_url"],
      overlay: ["image_url", "prediction_url"], errors: ["image_url", "truth_url", "prediction_url"],
    }[kind];
    canvas.dataset.src = sample[needs[needs.length - 1]];
    canvas.setAttribute("aria-label", `${KIND_TITLES[kind]} of ${sample.name}`);
    let images = null;
    const result = { element, canvas, kind };
    result.repaint = () => {
      if (!images) return;
      const [first, second, third] = images;
      if (kind === "image") paintImage(canvas, first);
      else if (kind === "truth" || kind === "prediction") paintMask(canvas, first, view.palette.table());
      else if (kind === "overlay") paintOverlay(canvas, first, second, view.palette.table(), view.opacity, view.palette.hidden);
      else {
        const counts = paintErrors(canvas, first, second, third);
        const pixels = first.width * first.height || 1;
        status.textContent = ` ${((100 * (counts.fp + counts.fn + counts.both)) / pixels).toFixed(1)}% wrong`;
        return;
      }
      status.textContent = "";
    };
    result.ready = Promise.all(needs.map((field) => load(sample[field]))).then((loaded) => {
      images = loaded;
      element.classList.add("loaded");
      result.repaint();
    }, (error) => {
      status.textContent = ` ${error.message}`;
      element.classList.add("failed");
    });
    return result;
  }

  function errorLegend() {
    return el("ul", { class: "error-legend", "aria-label": "Error view colours" },
      ...["fp", "fn", "both", "ignore"].map((kind) => el("li", {},
        el("span", { class: "swatch", style: `background: rgb(${ERROR_COLORS[kind].rgb.join(",")})` }),
        ERROR_COLORS[kind].label)));
  }

  // --- class palette --------------------------------------------------------------------------

  const HEX = /^#[0-9a-f]{6}$/;
  const SAVE_DELAY_MS = 250;
  // How long this page's own saves are recognised when their events come back.
  const ECHO_MS = 60_000;

  function readStored(storageKey) {
    try {
      const stored = JSON.parse(localStorage.getItem(storageKey) || "[]");
      return Array.isArray(stored) ? stored : [];
    } catch (error) {
      return [];
    }
  }

  /**
   * Class names and colours of a dataset. Colour changes are saved on the registered dataset
   * (PATCH /api/v1/datasets/{id}), so every run of it shows them; without a registered dataset
   * they are kept in this browser (localStorage). Colours saved by another page come in through
   * applyEvent (a `dataset` event) or followOtherTabs (localStorage).
   */
  class Palette {
    constructor({ names, colors, datasetId = null, datasetName = null, storageKey = null, savedCount = null }) {
      this.names = names;
      this.colors = names.map((_, i) => String(colors[i] || defaultPalette(names.length)[i]).toLowerCase());
      this.datasetId = datasetId;
      this.datasetName = datasetName;
      this.storageKey = storageKey;
      this.savedCount = savedCount ?? names.length;
      this.hidden = new Set(names.length > 1 ? [0] : []);
      this.listeners = [];
      this.statusListeners = [];
      this.cachedTable = null;
      this.saveTimer = 0;
      this.inFlight = 0;
      this.sent = []; // {key, at} of this page's saves, oldest first
      this.missed = false;
      this.syncToken = 0;
    }

    table() {
      if (!this.cachedTable) this.cachedTable = lookupTable(this.colors);
      return this.cachedTable;
    }

    onChange(listener) { this.listeners.push(listener); }
    onStatus(listener) { this.statusListeners.push(listener); }

    changed() {
      this.cachedTable = null;
      for (const listener of this.listeners) listener(this);
    }

    status(text, isError = false) {
      for (const listener of this.statusListeners) listener(text, isError);
    }

    setColor(index, color, { save = true } = {}) {
      if (this.colors[index] === color) return;
      this.colors[index] = color;
      this.changed();
      if (save) this.scheduleSave();
    }

    setHidden(index, hidden) {
      if (hidden) this.hidden.add(index); else this.hidden.delete(index);
      this.changed();
    }

    scheduleSave() {
      clearTimeout(this.saveTimer);
      this.saveTimer = setTimeout(() => {
        this.saveTimer = 0;
        this.save();
      }, SAVE_DELAY_MS);
    }

    /** Whether a save of this page is waiting for its delay or for the server. */
    busy() {
      return Boolean(this.saveTimer) || this.inFlight > 0;
    }

    async save() {
      if (this.datasetId === null) {
        try {
          localStorage.setItem(this.storageKey, JSON.stringify(this.colors));
          this.status("colours saved in this browser");
        } catch (error) {
          this.status(`could not save the colours: ${error.message}`, true);
        }
        return;
      }
      const colors = this.colors.slice(0, this.savedCount);
      const now = Date.now();
      this.sent = [...this.sent.filter((entry) => now - entry.at < ECHO_MS), { key: colors.join(","), at: now }].slice(-50);
      // Colours saved elsewhere before this save started are overwritten by it.
      this.missed = false;
      this.inFlight += 1;
      try {
        await api(`/api/v1/datasets/${this.datasetId}`, { method: "PATCH", json: { class_colors: colors } });
        this.status(`colours saved for dataset ${this.datasetName || this.datasetId}`);
      } catch (error) {
        this.status(`could not save the colours: ${error.message}`, true);
      } finally {
        this.inFlight -= 1;
      }
      // Another page saved while this request was on its way: which came last is unknown.
      if (this.missed && !this.busy()) this.resync();
    }

    async resync() {
      this.missed = false;
      const token = ++this.syncToken;
      try {
        const dataset = await api(`/api/v1/datasets/${this.datasetId}`);
        if (token === this.syncToken && !this.busy()) this.replaceColors(dataset.class_colors);
      } catch (error) {
        this.status(`could not reload the colours: ${error.message}`, true);
      }
    }

    // Set every given colour without saving; listeners hear of it once. True if any changed.
    replaceColors(colors) {
      let changed = false;
      (colors || []).forEach((color, index) => {
        const value = String(color).toLowerCase();
        if (index < this.colors.length && HEX.test(value) && this.colors[index] !== value) {
          this.colors[index] = value;
          changed = true;
        }
      });
      if (changed) this.changed();
      return changed;
    }

    /**
     * Colours saved by another page: shown, not saved again. Ignored while this page's own save
     * is pending or on its way (a colour being dragged must not jump back), and when they are an
     * earlier save of this page coming back. Returns whether the colours changed.
     */
    applySaved(colors) {
      const key = (colors || []).map((color) => String(color).toLowerCase()).join(",");
      const now = Date.now();
      const keys = this.sent.filter((entry) => now - entry.at < ECHO_MS).map((entry) => entry.key);
      const own = keys.lastIndexOf(key);
      if (own >= 0 && own < keys.length - 1) return false;
      if (this.busy()) {
        if (own < 0 && this.inFlight > 0) this.missed = true;
        return false;
      }
      this.syncToken += 1; // a reload on its way is older than these colours
      const changed = this.replaceColors(colors);
      if (changed && own < 0) this.status("colours changed on another page");
      return changed;
    }

    /** A `dataset` event from the server: applied when it is this palette's dataset's colours. */
    applyEvent(event) {
      if (event.kind !== "dataset" || event.action !== "colors") return false;
      if (this.datasetId === null || event.dataset_id !== this.datasetId) return false;
      return this.applySaved(event.class_colors);
    }

    /** Without a registered dataset: follow colours that other tabs of this browser save. */
    followOtherTabs() {
      if (this.datasetId !== null || !this.storageKey) return;
      window.addEventListener("storage", (event) => {
        if (event.key === this.storageKey && event.newValue !== null) this.applySaved(readStored(this.storageKey));
      });
    }
  }

  /**
   * The palette of a run: its dataset's names and colours when it has a registered dataset,
   * else its class names (or per-class metric keys) with colours kept in this browser.
   */
  async function paletteForRun(run) {
    let names = run.class_names && run.class_names.length ? run.class_names.slice() : null;
    if (run.dataset_id !== null && run.dataset_id !== undefined) {
      const dataset = await api(`/api/v1/datasets/${run.dataset_id}`);
      names = names || dataset.class_names.slice();
      return new Palette({
        names, colors: dataset.class_colors, datasetId: dataset.id, datasetName: dataset.name,
        savedCount: dataset.num_classes,
      });
    }
    if (!names) {
      names = Object.keys(run.metrics || {})
        .filter((key) => key.startsWith("val/iou/"))
        .map((key) => key.slice("val/iou/".length));
    }
    const storageKey = `segtrack:class-colors:${run.dataset_path || `run-${run.id}`}`;
    const stored = readStored(storageKey);
    const colors = names.map((_, i) => (/^#[0-9a-f]{6}$/i.test(stored[i] || "") ? stored[i] : defaultPalette(names.length)[i]));
    return new Palette({ names, colors, storageKey });
  }

  /**
   * Where a colour change goes, said next to the colour inputs: a registered dataset's colours are
   * shared by every run of it, so changing one here is not a change to this run only.
   */
  function scopeNote(palette) {
    if (palette.datasetId !== null) {
      const name = palette.datasetName || `dataset ${palette.datasetId}`;
      return `Colours belong to dataset ${name}: changing one here changes it for every run of ${name}, on every page and for everyone (the Datasets page edits the same colours).`;
    }
    return "Colours are kept in this browser only: other browsers and people still see the defaults.";
  }

  /** Swatch (a colour input) + name + "in overlay" toggle per class; follows the palette. */
  function legend(palette, { idPrefix = "class" } = {}) {
    const statusLine = el("p", { class: "legend-status muted", "aria-live": "polite" });
    const scopeId = `${idPrefix}-colors-scope`;
    const scope = el("p", { class: "legend-scope muted", id: scopeId }, scopeNote(palette));
    const list = el("ul", { class: "class-legend", "aria-label": "Classes", "aria-describedby": scopeId });
    const inputs = palette.names.map((name, index) => {
      const colorId = `${idPrefix}-color-${index}`;
      const color = el("input", { type: "color", id: colorId, value: palette.colors[index], "data-class-index": index, title: `Change the colour of ${name}`, "aria-describedby": scopeId });
      const shown = el("input", { type: "checkbox", id: `${idPrefix}-shown-${index}`, checked: !palette.hidden.has(index) });
      color.addEventListener("input", () => palette.setColor(index, color.value));
      shown.addEventListener("change", () => palette.setHidden(index, !shown.checked));
      list.append(el("li", { class: "legend-item" },
        color,
        el("label", { for: colorId, class: "class-name" }, name),
        el("label", { class: "overlay-toggle", for: `${idPrefix}-shown-${index}`, title: `Paint ${name} in the overlay` }, shown, "overlay")));
      return { color, shown };
    });
    palette.onChange(() => palette.colors.forEach((color, i) => {
      if (inputs[i].color.value !== color) inputs[i].color.value = color;
      inputs[i].shown.checked = !palette.hidden.has(i);
    }));
    palette.onStatus((text, isError) => {
      statusLine.textContent = text;
      statusLine.classList.toggle("error-text", isError);
    });
    return el("div", { class: "legend-block" }, list, scope, statusLine);
  }

  return { defaultPalette, tile, errorLegend, Palette, paletteForRun, legend };
})();
