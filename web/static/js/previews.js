// The run page's mask previews: an epoch slider over the epochs that have previews (plus a
// go-to box and arrow keys), each epoch's samples loaded when first shown and cached, and new
// epochs arriving live extend the slider, following them only when the latest one was shown.
// Each sample is headed by its scores at the epoch shown (when the run scored every validation
// image) and badges saying why it is there (the fixed set, pinned by a user, among the epoch's
// worst), and a switch draws the truth's outline over predictions and overlays. A pin bar
// pins validation images by position or name (and each sample's Pin button pins it): the
// run's trainer previews them from its next epoch on. Users who may not change the run see
// the pins without the controls.

import { el } from "./dom.js";
import { api } from "./http.js";
import { KINDS, tile } from "./mask_tiles.js";
import { formatNumber } from "./pure/format.js";

/** An image's scores at one epoch. @typedef {{epoch: number, iou: number, dice: number, pixels_wrong: number}} ImageScore */
/** A pinned validation image. @typedef {{index: number, name: string, pinned_by: string | null, pinned_at: string}} PinnedImage */

/** Why a sample is previewed, as its badge says it and its tooltip explains. */
export const REASONS = {
  fixed: { label: "fixed", title: "One of the images chosen when the run started, shown every epoch" },
  pinned: { label: "pinned", title: "Pinned on this run: shown every epoch from the one after it was pinned" },
  worst: { label: "worst", title: "Among this epoch's worst validation images by the monitored score" },
};

/**
 * The badges of a sample's reasons (unknown ones left out), in the order given.
 * @param {string[] | undefined} reasons
 */
export function reasonBadges(reasons) {
  return (reasons || ["fixed"]).filter((reason) => reason in REASONS).map((reason) => {
    const { label, title } = REASONS[/** @type {keyof typeof REASONS} */ (reason)];
    return el("span", { class: `preview-reason reason-${reason}`, title, "data-reason": reason }, label);
  });
}

/**
 * The score line of a sample: "IoU 0.7120 · Dice 0.8001 · 312 px wrong".
 * @param {ImageScore} score
 */
export function scoreText(score) {
  return `IoU ${formatNumber(score.iou, 4)} · Dice ${formatNumber(score.dice, 4)} · ${score.pixels_wrong.toLocaleString("en-US")} px wrong`;
}

/**
 * A Pin / Unpin button of validation image `index` (`name` in its label) that pins or unpins it
 * on `browser`; `syncPinToggles` keeps its state.
 * @param {PreviewBrowser} browser
 * @param {number} index
 * @param {string} name
 */
export function pinToggle(browser, index, name) {
  const on = browser.pinnedIndices().has(index);
  return el("button", {
    type: "button", class: "pin-toggle", "data-index": String(index), "aria-pressed": String(on),
    "aria-label": `Pin or unpin ${name}`,
    onclick: () => {
      const asked = browser.pinnedIndices().has(index) ? browser.unpin(String(index)) : browser.pin(String(index));
      asked.catch(() => {});
    },
  }, on ? "Unpin" : "Pin");
}

/**
 * Set the Pin / Unpin buttons under `root` to the pins of `pinned` (indices).
 * @param {ParentNode} root
 * @param {Set<number>} pinned
 */
export function syncPinToggles(root, pinned) {
  for (const button of root.querySelectorAll("button.pin-toggle")) {
    const on = pinned.has(Number(button.getAttribute("data-index")));
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Unpin" : "Pin";
  }
}

export class PreviewBrowser {
  /**
   * @param {{runId: number, area: HTMLElement, slider: HTMLInputElement, output: HTMLElement,
   *   gotoInput: HTMLInputElement, opacityInput: HTMLInputElement, opacityOutput: HTMLElement,
   *   palette: import("./class_palette.js").Palette, onError: (error: unknown) => void,
   *   outlineInput?: HTMLInputElement, onEpoch?: (epoch: number) => void,
   *   scoreOf?: (sample: any, epoch: number) => Promise<ImageScore | null>,
   *   pins?: "edit" | "read"}} options
   *   `area`: the samples' container (focusable); `onEpoch`: the slider chose an epoch;
   *   `scoreOf`: a sample's scores at an epoch (null: none stored); `pins`: show the run's
   *   pinned images, with ("edit") the pin form, each chip's unpin and each sample's Pin button
   */
  constructor(options) {
    this.options = options;
    /** @type {number[]} epochs with previews, ascending */
    this.epochs = [];
    this.index = -1;
    /** @type {Map<number, Promise<any>>} previews by epoch */
    this.cache = new Map();
    /** @type {import("./mask_tiles.js").Tile[]} */
    this.tiles = [];
    this.shownEpoch = null;
    this.token = 0;
    /** @type {import("./mask_tiles.js").TileView} shared with every tile the page shows */
    this.view = {
      palette: options.palette, opacity: Number(options.opacityInput.value),
      outline: Boolean(options.outlineInput && options.outlineInput.checked),
    };
    /** @type {Set<() => void>} other tiles' owners that repaint with these (the Images viewer) */
    this.repaintListeners = new Set();
    /** @type {PinnedImage[]} the run's pinned images, oldest first */
    this.pinned = [];
    this.maxPinned = 0;
    /** Whether this page's user may pin and unpin (the controls are shown). */
    this.canPin = options.pins === "edit";
    /** @type {Set<() => void>} called after the pins changed (the Images list's Pin buttons) */
    this.pinListeners = new Set();
    /** @type {HTMLElement | null} */
    this.pinBar = options.pins ? this.buildPinBar() : null;
    this.bind();
  }

  /** The pin bar, above the samples: a box for a position or name, and the pinned chips. */
  buildPinBar() {
    const input = el("input", {
      type: "text", id: "pin-image", maxlength: "500", placeholder: "position or name", autocomplete: "off",
      "aria-describedby": "pin-help",
    });
    const form = el("form", { class: "pin-form", "aria-label": "Pin a validation image" },
      el("label", { for: "pin-image" }, "Pin a validation image"), input,
      el("button", { type: "submit", class: "button" }, "Pin"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = /** @type {HTMLInputElement} */ (input).value.trim();
      if (value) this.pin(value).then(() => { /** @type {HTMLInputElement} */ (input).value = ""; }, () => {});
    });
    const bar = el("div", { class: "pin-bar", id: "pin-bar" }, this.canPin ? form : el("span", {}, "Pinned images"),
      el("ul", { class: "pinned-list", id: "pinned-list", "aria-label": "Pinned images" }),
      el("p", { class: "muted pin-help", id: "pin-help" },
        "Pinned images are previewed from the run's next epoch on (a finished run's once it is resumed), "
        + "beside the fixed set and each epoch's worst; Images predicts any image from a checkpoint now."));
    this.options.area.before(bar);
    return bar;
  }

  /** Read the run's pins and show them. */
  async loadPins() {
    if (!this.pinBar) return;
    const body = await api(`/api/v1/runs/${this.options.runId}/pinned-images`);
    this.setPinned(body);
  }

  /** @param {{images: PinnedImage[], max_pinned: number}} body */
  setPinned(body) {
    this.pinned = body.images;
    this.maxPinned = body.max_pinned;
    this.renderPins();
  }

  /** The index of each pinned image. */
  pinnedIndices() {
    return new Set(this.pinned.map((pin) => pin.index));
  }

  renderPins() {
    if (!this.pinBar) return;
    const list = /** @type {HTMLElement} */ (this.pinBar.querySelector(".pinned-list"));
    list.replaceChildren(...this.pinned.map((pin) => el("li", { class: "chip pinned-chip", "data-pinned": String(pin.index) },
      `${pin.name} (#${pin.index})`,
      this.canPin && el("button", {
        type: "button", class: "chip-remove", "aria-label": `Unpin ${pin.name}`, title: "Unpin",
        onclick: () => this.unpin(String(pin.index)).catch(() => {}),
      }, "×"))));
    if (!this.pinned.length && !this.canPin) list.append(el("li", { class: "muted" }, "none"));
    if (this.maxPinned) list.title = `${this.pinned.length} of at most ${this.maxPinned} pinned`;
    syncPinToggles(this.options.area, this.pinnedIndices());
    for (const listener of this.pinListeners) listener();
  }

  /**
   * Pin a validation image by position or name; errors go to `onError` (and reject).
   * @param {string} image
   */
  async pin(image) {
    try {
      this.setPinned(await api(`/api/v1/runs/${this.options.runId}/pinned-images/${encodeURIComponent(image)}`, { method: "PUT" }));
    } catch (error) {
      this.options.onError(error);
      throw error;
    }
  }

  /** @param {string} image */
  async unpin(image) {
    try {
      this.setPinned(await api(`/api/v1/runs/${this.options.runId}/pinned-images/${encodeURIComponent(image)}`, { method: "DELETE" }));
    } catch (error) {
      this.options.onError(error);
      throw error;
    }
  }

  /** A `run` event with the pins as they are now (another page changed them). */
  pinsChanged() {
    this.loadPins().catch(this.options.onError);
  }

  bind() {
    const { slider, gotoInput, area, opacityInput, opacityOutput, palette } = this.options;
    slider.addEventListener("input", () => this.select(Number(slider.value)));
    gotoInput.addEventListener("change", () => this.goTo(Number(gotoInput.value)));
    gotoInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); this.goTo(Number(gotoInput.value)); }
    });
    // The slider handles its own arrow keys; the preview area gets the same ones.
    area.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: this.index - 1, ArrowRight: this.index + 1, Home: 0, End: this.epochs.length - 1 };
      if (!(event.key in moves) || !this.epochs.length) return;
      event.preventDefault();
      this.select(Math.max(0, Math.min(this.epochs.length - 1, moves[event.key])));
    });
    opacityInput.addEventListener("input", () => {
      this.view.opacity = Number(opacityInput.value);
      opacityOutput.textContent = this.view.opacity.toFixed(2);
      this.repaint("overlay");
    });
    const { outlineInput } = this.options;
    if (outlineInput) {
      outlineInput.addEventListener("change", () => {
        this.view.outline = outlineInput.checked;
        this.repaint("prediction");
        this.repaint("overlay");
      });
    }
    palette.onChange(() => this.repaint());
  }

  repaint(kind = null) {
    for (const tile of this.tiles) if (kind === null || tile.kind === kind) tile.repaint();
    for (const listener of this.repaintListeners) listener();
  }

  fetchEpoch(epoch) {
    let promise = this.cache.get(epoch);
    if (!promise) {
      promise = api(`/api/v1/runs/${this.options.runId}/previews?epoch=${epoch}`);
      promise.catch(() => this.cache.delete(epoch));
      this.cache.set(epoch, promise);
    }
    return promise;
  }

  /** Load the epoch list and show the latest epoch. */
  async start() {
    const pins = this.loadPins().catch(this.options.onError);
    const latest = await api(`/api/v1/runs/${this.options.runId}/previews`);
    if (latest.epoch !== null) this.cache.set(latest.epoch, Promise.resolve(latest));
    this.epochs = latest.epochs.slice();
    this.updateSlider();
    if (this.epochs.length) await this.select(this.epochs.length - 1);
    await pins;
  }

  updateSlider() {
    const { slider, gotoInput, output } = this.options;
    slider.disabled = this.epochs.length < 2;
    slider.max = String(Math.max(0, this.epochs.length - 1));
    slider.value = String(Math.max(0, this.index));
    if (this.epochs.length) {
      gotoInput.min = String(this.epochs[0]);
      gotoInput.max = String(this.epochs[this.epochs.length - 1]);
    }
    const epoch = this.epochs[this.index];
    const text = epoch === undefined ? "–" : `${epoch} (${this.index + 1} of ${this.epochs.length} with previews)`;
    output.textContent = text;
    slider.setAttribute("aria-valuetext", epoch === undefined ? "no previews" : `epoch ${epoch}`);
  }

  goTo(epoch) {
    if (!this.epochs.length || !Number.isFinite(epoch)) return;
    let best = 0;
    this.epochs.forEach((candidate, i) => {
      if (Math.abs(candidate - epoch) < Math.abs(this.epochs[best] - epoch)) best = i;
    });
    this.select(best);
  }

  /** Show the epoch at `index` of the slider; stale loads (the user moved on) are dropped. */
  async select(index) {
    this.index = index;
    this.updateSlider();
    const epoch = this.epochs[index];
    this.options.gotoInput.value = String(epoch);
    if (this.options.onEpoch && epoch !== undefined) this.options.onEpoch(epoch);
    const token = ++this.token;
    try {
      const body = await this.fetchEpoch(epoch);
      if (token !== this.token) return;
      await this.show(body, token);
    } catch (error) {
      if (token === this.token) this.options.onError(error);
    }
  }

  async show(body, token) {
    const rows = [];
    const tiles = [];
    for (const sample of body.samples) {
      const sampleTiles = KINDS.map((kind) => tile(kind, sample, this.view));
      tiles.push(...sampleTiles);
      const score = el("span", { class: "sample-score", "data-sample-score": sample.name });
      const toggle = this.pinBar && this.canPin && pinToggle(this, sample.sample_index, sample.name);
      rows.push(el("div", { class: "sample-row", "data-sample": sample.name, "data-reasons": (sample.reasons || ["fixed"]).join(" ") },
        el("h3", { class: "sample-name" }, sample.name,
          el("span", { class: "preview-reasons" }, ...reasonBadges(sample.reasons)), score, toggle),
        el("div", { class: "sample-tiles" }, ...sampleTiles.map((tile) => tile.element))));
      this.fillScore(score, sample, body.epoch);
    }
    // Keep the old epoch on screen until the new one is painted: no flicker while scrubbing.
    await Promise.all(tiles.map((tile) => tile.ready));
    if (token !== this.token) return;
    this.tiles = tiles;
    this.shownEpoch = body.epoch;
    const { area } = this.options;
    area.dataset.epoch = String(body.epoch);
    area.replaceChildren(...(rows.length ? rows : [el("p", { class: "muted" }, "No preview samples at this epoch.")]));
  }

  /**
   * Write the sample's scores at `epoch` into `target` once known (nothing without a scorer or
   * a stored score).
   * @param {HTMLElement} target
   * @param {any} sample
   * @param {number} epoch
   */
  fillScore(target, sample, epoch) {
    const { scoreOf } = this.options;
    if (!scoreOf) return;
    scoreOf(sample, epoch).then((score) => {
      target.textContent = score ? scoreText(score) : "";
      target.title = score ? `Scores of ${sample.name} at epoch ${score.epoch}` : "";
    }, () => { target.textContent = ""; });
  }

  /** Fill in the score lines shown again (after the scores of a new epoch were stored). */
  refreshScores() {
    if (this.shownEpoch === null) return;
    for (const row of this.options.area.querySelectorAll(".sample-row")) {
      const target = row.querySelector(".sample-score");
      const sample = this.cache.get(this.shownEpoch);
      if (!target || !sample) continue;
      const name = row.getAttribute("data-sample");
      sample.then((body) => {
        const found = body.samples.find((item) => item.name === name);
        if (found) this.fillScore(/** @type {HTMLElement} */ (target), found, this.shownEpoch);
      }, () => {});
    }
  }

  /** A `preview` event: a new (or redone) epoch. */
  addEpoch(epoch) {
    const wasLatest = this.index === this.epochs.length - 1;
    if (this.epochs.includes(epoch)) {
      this.cache.delete(epoch);
      if (this.shownEpoch === epoch) this.select(this.index);
      return;
    }
    const shown = this.epochs[this.index];
    this.epochs.push(epoch);
    this.epochs.sort((a, b) => a - b);
    if (wasLatest || shown === undefined) this.select(this.epochs.length - 1);
    else {
      this.index = this.epochs.indexOf(shown);
      this.updateSlider();
    }
  }
}

