// A dataset's class palette: names and colours that pages paint masks and charts with. Colour
// changes are saved on the registered dataset (so every run of it shows them) or, without one,
// in this browser; colours saved by another page or tab come in without echoing this page's own.

import { api } from "./http.js";
import { defaultPalette, isHex } from "./pure/colors.js";
import { lookupTable } from "./pure/mask_pixels.js";
import { pageRights } from "./rights.js";

const SAVE_DELAY_MS = 250;
// How long this page's own saves are recognised when their events come back.
const ECHO_MS = 60_000;

/**
 * Colours kept in this browser under `storageKey`; none when unreadable.
 * @param {string} storageKey
 * @returns {unknown[]}
 */
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
export class Palette {
  /**
   * @param {{names: string[], colors: string[], datasetId?: number | null, datasetName?: string | null,
   *   storageKey?: string | null, savedCount?: number | null}} options `savedCount`: how many of
   *   the colours the dataset stores (the run may name more classes)
   */
  constructor({ names, colors, datasetId = null, datasetName = null, storageKey = null, savedCount = null }) {
    this.names = names;
    this.colors = names.map((_, i) => String(colors[i] || defaultPalette(names.length)[i]).toLowerCase());
    this.datasetId = datasetId;
    this.datasetName = datasetName;
    this.storageKey = storageKey;
    this.savedCount = savedCount ?? names.length;
    this.hidden = new Set(names.length > 1 ? [0] : []);
    /** @type {Array<(palette: Palette) => void>} */
    this.listeners = [];
    /** @type {Array<(text: string, isError: boolean) => void>} */
    this.statusListeners = [];
    /** @type {Uint8ClampedArray | null} */
    this.cachedTable = null;
    this.saveTimer = 0;
    this.inFlight = 0;
    /** @type {Array<{key: string, at: number}>} this page's saves, oldest first */
    this.sent = [];
    this.missed = false;
    this.syncToken = 0;
  }

  /**
   * Whether this user may change the colours: a registered dataset's are saved for everyone, which
   * needs the right to write; colours kept in this browser are anyone's.
   */
  get editable() {
    return this.datasetId === null || pageRights().canWrite;
  }

  /** RGBA per class index, for the painters. */
  table() {
    if (!this.cachedTable) this.cachedTable = lookupTable(this.colors);
    return this.cachedTable;
  }

  /** @param {(palette: Palette) => void} listener called after any colour or visibility change */
  onChange(listener) { this.listeners.push(listener); }
  /** @param {(text: string, isError: boolean) => void} listener told how saving went */
  onStatus(listener) { this.statusListeners.push(listener); }

  changed() {
    this.cachedTable = null;
    for (const listener of this.listeners) listener(this);
  }

  /**
   * @param {string} text
   * @param {boolean} [isError]
   */
  status(text, isError = false) {
    for (const listener of this.statusListeners) listener(text, isError);
  }

  /**
   * @param {number} index
   * @param {string} color '#rrggbb'
   * @param {{save?: boolean}} [options]
   */
  setColor(index, color, { save = true } = {}) {
    if (this.colors[index] === color) return;
    this.colors[index] = color;
    this.changed();
    if (save) this.scheduleSave();
  }

  /**
   * @param {number} index
   * @param {boolean} hidden left out of the overlay
   */
  setHidden(index, hidden) {
    if (hidden) this.hidden.add(index); else this.hidden.delete(index);
    this.changed();
  }

  scheduleSave() {
    clearTimeout(this.saveTimer);
    this.saveTimer = window.setTimeout(() => {
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

  /**
   * Set every given colour without saving; listeners hear of it once. True if any changed.
   * @param {unknown[] | null | undefined} colors
   */
  replaceColors(colors) {
    let changed = false;
    (colors || []).forEach((color, index) => {
      const value = String(color).toLowerCase();
      if (index < this.colors.length && isHex(value) && this.colors[index] !== value) {
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
   * @param {unknown[] | null | undefined} colors
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

  /**
   * A `dataset` event from the server: applied when it is this palette's dataset's colours.
   * @param {any} event
   */
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
/**
 * @param {any} run as GET /api/v1/runs/{id} answers
 * @returns {Promise<Palette>}
 */
export async function paletteForRun(run) {
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
  const colors = names.map((_, i) => (isHex(stored[i]) ? String(stored[i]) : defaultPalette(names.length)[i]));
  return new Palette({ names, colors, storageKey });
}
