// The run page's confusion heatmap: K x K cells, rows the true class and columns the predicted
// one, as pixel counts or as the share of each true class's pixels, at the epoch the validation
// views show (following the previews' slider), with the CSV of that epoch's matrix.

import { el } from "./dom.js";
import { api } from "./http.js";
import { safeColor } from "./pure/colors.js";
import {
  cellColor, cellLayout, cellText, normalise, rampColor, scalePositions, textColor, totals,
} from "./pure/confusion.js";

/** @typedef {import("./pure/confusion.js").Normalisation} Normalisation */

/** Width the cells share (the panel's, less the row labels), before it is measured. */
const DEFAULT_WIDTH = 760;
const ROTATE_FROM = 7;
const CHAR_PX = 7;

export class ConfusionView {
  /**
   * @param {{runId: number, panel: HTMLElement, container: HTMLElement,
   *   choice: import("./pure/epoch_choice.js").EpochChoice,
   *   palette: import("./class_palette.js").Palette, onChoose: (epoch: number) => void,
   *   onError: (error: unknown) => void}} options
   *   `onChoose`: the user picked an epoch in the view's own selector
   */
  constructor(options) {
    this.options = options;
    /** @type {Map<number, Promise<any>>} matrices by epoch */
    this.cache = new Map();
    /** @type {Normalisation} */
    this.mode = "true";
    this.token = 0;
    this.epochSelect = el("select", { id: "confusion-epoch", "aria-label": "Epoch of the confusion matrix" });
    this.csv = el("a", { id: "confusion-csv", class: "button", download: true }, "confusion.csv");
    this.heatmap = el("div", { id: "confusion-heatmap", class: "confusion-heatmap" });
    this.caption = el("p", { class: "muted confusion-caption" });
    const radio = (mode, label) => el("label", { class: "inline-check" },
      el("input", {
        type: "radio", name: "confusion-mode", id: `confusion-mode-${mode}`, value: mode, checked: mode === this.mode,
        onchange: () => { this.mode = mode; this.render(); },
      }), label);
    options.container.replaceChildren(
      el("div", { class: "validation-controls" },
        el("label", { for: "confusion-epoch" }, "Epoch"), this.epochSelect,
        el("span", { role: "radiogroup", "aria-label": "Cell values", class: "radio-group" },
          radio("true", "Share of true class"), radio("counts", "Pixel counts")),
        this.csv),
      this.caption, this.heatmap);
    this.epochSelect.addEventListener("change", () => options.onChoose(Number(this.epochSelect.value)));
    options.choice.onChange(() => this.render());
    options.palette.onChange(() => this.render());
  }

  /**
   * The latest matrix and the epochs stored; false when the run has none yet (the panel stays
   * hidden until its first `validation` event).
   */
  async start() {
    try {
      const latest = await api(`/api/v1/runs/${this.options.runId}/confusion`);
      this.cache.set(latest.epoch, Promise.resolve(latest));
      return latest.epochs;
    } catch (error) {
      if (error.status === 404) return null;
      throw error;
    }
  }

  /** @param {number} epoch */
  fetchEpoch(epoch) {
    let promise = this.cache.get(epoch);
    if (!promise) {
      promise = api(`/api/v1/runs/${this.options.runId}/confusion?epoch=${epoch}`);
      promise.catch(() => this.cache.delete(epoch));
      this.cache.set(epoch, promise);
    }
    return promise;
  }

  /** A `validation` event: that epoch's matrix is new (or redone). @param {number} epoch */
  forget(epoch) {
    this.cache.delete(epoch);
  }

  renderEpochs() {
    const { choice } = this.options;
    const wanted = choice.epochs.map(String);
    const have = [...this.epochSelect.options].map((option) => option.value);
    if (wanted.join(",") !== have.join(",")) {
      this.epochSelect.replaceChildren(...choice.epochs.map((epoch) => el("option", { value: String(epoch) }, `epoch ${epoch}`)));
    }
    if (choice.current !== null) this.epochSelect.value = String(choice.current);
  }

  async render() {
    const { choice, panel, runId } = this.options;
    if (choice.current === null) return;
    panel.hidden = false;
    this.renderEpochs();
    const epoch = choice.current;
    this.csv.href = `/api/v1/runs/${runId}/confusion.csv?epoch=${epoch}`;
    this.csv.title = `The confusion matrix of epoch ${epoch} as CSV (rows truth, columns prediction)`;
    const token = ++this.token;
    try {
      const body = await this.fetchEpoch(epoch);
      if (token === this.token) this.draw(body);
    } catch (error) {
      if (token === this.token) this.options.onError(error);
    }
  }

  /** @param {{epoch: number, class_names: string[], matrix: number[][]}} body */
  draw(body) {
    const { palette } = this.options;
    const names = body.class_names;
    const values = normalise(body.matrix, this.mode);
    const positions = scalePositions(values, this.mode);
    const sums = totals(body.matrix);
    const width = Math.max(200, (this.heatmap.clientWidth || DEFAULT_WIDTH) - 180);
    const { side, labelled } = cellLayout(names.length, width);
    // Names wider than a cell stand upright, so every column keeps the cells' width.
    const longest = Math.max(...names.map((name) => name.length));
    const rotated = names.length >= ROTATE_FROM || longest * CHAR_PX + 24 > side;
    const swatch = (index) => el("span", { class: "swatch", style: `background: ${safeColor(palette.colors[index])}` });
    const head = el("tr", {},
      el("th", { class: "confusion-corner", scope: "col" }, el("span", {}, "truth \u2193 / prediction \u2192")),
      ...names.map((name, j) => el("th", { scope: "col", class: rotated ? "rotated" : "", title: `predicted ${name}` },
        el("span", {}, swatch(j), name))),
      el("th", { scope: "col", class: "num confusion-total" }, "pixels"));
    const rows = names.map((truth, i) => el("tr", {},
      el("th", { scope: "row", title: `truth ${truth}` }, swatch(i), truth),
      ...names.map((predicted, j) => {
        const background = cellColor(positions[i][j]);
        const count = body.matrix[i][j];
        const share = sums.rows[i] ? ` (${cellText(count / sums.rows[i], "true")} of ${truth})` : "";
        const title = `truth ${truth}, predicted ${predicted}: ${count.toLocaleString("en-US")} px${share}`;
        return el("td", {
          class: `confusion-cell${i === j ? " diagonal" : ""}`, title,
          style: `background: ${background}; color: ${textColor(background)}; width: ${side}px; height: ${side}px`,
          "data-row": String(i), "data-column": String(j), "data-count": String(count),
        }, labelled ? cellText(values[i][j], this.mode) : "");
      }),
      el("td", { class: "num confusion-total" }, cellText(sums.rows[i], "counts"))));
    const table = el("table", {
      class: "confusion-table", id: "confusion-table", "data-epoch": String(body.epoch), "data-mode": this.mode,
      "aria-label": `Confusion matrix at epoch ${body.epoch}: rows are the true class, columns the predicted class`,
    }, el("thead", {}, head), el("tbody", {}, ...rows));
    const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => `${rampColor(t)} ${t * 100}%`).join(", ");
    const maximum = this.mode === "true" ? "100%" : cellText(Math.max(0, ...body.matrix.flat()), "counts");
    const legend = el("div", { class: "confusion-legend", "aria-hidden": "true" },
      el("span", {}, this.mode === "true" ? "0%" : "0"),
      el("span", { class: "confusion-ramp", style: `background: linear-gradient(to right, ${stops})` }),
      el("span", {}, maximum),
      el("span", { class: "muted" }, this.mode === "true" ? "share of the true class (linear)" : "pixels (log scale)"));
    this.caption.textContent = this.mode === "true"
      ? `Epoch ${body.epoch}: each row is one true class's pixels, split by what they were predicted as (rows sum to 100%).`
      : `Epoch ${body.epoch}: validation pixels by true class (rows) and predicted class (columns).`;
    this.heatmap.replaceChildren(el("div", { class: "table-scroll" }, table), legend);
    this.heatmap.dataset.epoch = String(body.epoch);
  }
}
