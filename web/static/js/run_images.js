// The run page's "Images": every validation image at the epoch the validation views show,
// sorted by a score (worst first by default), filtered by a class in its truth or by having got
// worse since another epoch, a page at a time, each with a sparkline of its IoU over the epochs
// (fetched only once its row is on screen). Opening an image shows its image / truth /
// prediction / overlay / error view at that epoch when a preview of it was saved there; when none
// was, "Predict from checkpoint (epoch N)" asks a worker to predict it from the run's checkpoint
// nearest that epoch (a predict_image job), follows the job's progress through its events and
// shows the five views of its result, saying which epoch's weights made it. The list marks the
// images predicted so already (opened, they show at once), and each row pins or unpins its
// image like the previews' pin bar, in step with it. Users who may not change the run get
// neither the Pin buttons nor the Predict one.

import { el } from "./dom.js";
import { api, messageOf } from "./http.js";
import { onJobEvent } from "./job_events.js";
import { KINDS, tile } from "./mask_tiles.js";
import { pinToggle, scoreText, syncPinToggles } from "./previews.js";
import { formatNumber } from "./pure/format.js";
import { PENDING, nearestCheckpoint, progressText } from "./pure/job_summary.js";
import {
  SORTS, imagesQuery, initialState, orderLabel, pageInfo, pageText, predictedText, sparkRange, sparkline, update,
} from "./pure/image_list.js";

const SPARK_WIDTH = 120;
const SPARK_HEIGHT = 26;
const SVG = "http://www.w3.org/2000/svg";
/** How often a followed job is read while no event about it came (the stream may be away). */
const JOB_POLL_MS = 4000;

/**
 * An SVG element (el() makes HTML ones).
 * @param {string} tag
 * @param {Record<string, string>} attributes
 */
function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

/**
 * The Preview cell of an image a predict_image job predicted (empty when none did).
 * @param {number[] | undefined} epochs the epochs of the weights used
 */
function predictedMark(epochs) {
  if (!epochs || !epochs.length) return "";
  return el("span", {
    class: "predicted-mark", title: "A prediction a worker made from a checkpoint: opening the image shows it at once",
  }, predictedText(epochs));
}

export class ImagesView {
  /**
   * @param {{runId: number, panel: HTMLElement, container: HTMLElement,
   *   choice: import("./pure/epoch_choice.js").EpochChoice,
   *   previews: import("./previews.js").PreviewBrowser, onChoose: (epoch: number) => void,
   *   onError: (error: unknown) => void, canChange: boolean}} options
   *   `onChoose`: the user picked an epoch in the view's own selector; `canChange`: the user
   *   may pin images and queue predictions
   */
  constructor(options) {
    this.options = options;
    this.state = initialState();
    /** @type {Map<number, Promise<any>>} trends by image index, until a new epoch is stored */
    this.trends = new Map();
    /** @type {string[]} */
    this.classNames = [];
    this.token = 0;
    /** @type {any[]} the page of images shown */
    this.items = [];
    this.total = 0;
    /** @type {{name: string, index: number} | null} the image opened below the list */
    this.opened = null;
    /** @type {import("./mask_tiles.js").Tile[]} */
    this.viewerTiles = [];
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        this.observer.unobserve(entry.target);
        this.drawTrend(/** @type {HTMLElement} */ (entry.target));
      }
    });
    this.build();
    options.choice.onChange(() => this.followChoice());
    options.previews.repaintListeners.add(() => { for (const item of this.viewerTiles) item.repaint(); });
    options.previews.pinListeners.add(() => this.syncPins());
  }

  /** The rows' pinned marks and Pin buttons, as the run's pins are now. */
  syncPins() {
    const pinned = this.options.previews.pinnedIndices();
    for (const row of this.table.querySelectorAll("tbody tr[data-index]")) {
      const on = pinned.has(Number(row.getAttribute("data-index")));
      row.classList.toggle("pinned", on);
      const mark = row.querySelector(".pinned-mark");
      if (mark) mark.textContent = on ? "pinned" : "";
    }
    syncPinToggles(this.table, pinned);
  }

  build() {
    const select = (id, label) => el("select", { id, "aria-label": label });
    this.epochSelect = select("images-epoch", "Epoch of the scores");
    this.sortSelect = select("images-sort", "Sort by");
    this.sortSelect.replaceChildren(...SORTS.map(([key, label]) => el("option", { value: key }, label)));
    this.orderSelect = select("images-order", "Order");
    this.classSelect = select("images-class", "Only images whose truth has this class");
    this.worseSelect = select("images-worse", "Only images whose IoU was higher at this epoch");
    this.pageText = el("span", { id: "images-page", class: "muted", "aria-live": "polite" });
    const button = (id, label, title, offset) => el("button", {
      type: "button", id, title, onclick: () => {
        const value = offset();
        if (value !== null) this.change({ offset: value });
      },
    }, label);
    const info = () => pageInfo(this.total, this.state.offset, this.state.limit);
    this.pager = [
      button("images-first", "«", "First page", () => 0),
      button("images-prev", "‹ Previous", "Previous page", () => info().previous),
      button("images-next", "Next ›", "Next page", () => info().next),
      button("images-last", "»", "Last page", () => info().last),
    ];
    this.table = el("table", { id: "images-table", class: "images-table" });
    this.viewer = el("div", { id: "image-viewer", class: "image-viewer", hidden: true, tabindex: "-1" });
    this.epochSelect.addEventListener("change", () => this.options.onChoose(Number(this.epochSelect.value)));
    this.sortSelect.addEventListener("change", () => this.change({ sort: /** @type {any} */ (this.sortSelect.value) }));
    this.orderSelect.addEventListener("change", () => this.change({ order: /** @type {any} */ (this.orderSelect.value) }));
    this.classSelect.addEventListener("change", () => this.change({ className: this.classSelect.value }));
    this.worseSelect.addEventListener("change", () => this.change({
      worseThan: this.worseSelect.value === "" ? null : Number(this.worseSelect.value),
    }));
    const field = (id, label, control) => el("span", { class: "field" }, el("label", { for: id }, label), control);
    this.options.container.replaceChildren(
      el("div", { class: "validation-controls" },
        field("images-epoch", "Epoch", this.epochSelect),
        field("images-sort", "Sort by", this.sortSelect),
        field("images-order", "Order", this.orderSelect),
        field("images-class", "Class present", this.classSelect),
        field("images-worse", "Worse than at", this.worseSelect)),
      el("div", { class: "images-pager" }, ...this.pager.slice(0, 2), this.pageText, ...this.pager.slice(2)),
      el("div", { class: "table-scroll" }, this.table),
      this.viewer);
  }

  /**
   * The first page at the latest epoch; the stored epochs, or null when the run has no
   * validation detail yet.
   */
  async start() {
    try {
      const body = await api(`/api/v1/runs/${this.options.runId}/images?${imagesQuery(this.state)}`);
      this.show(body);
      return body.epochs;
    } catch (error) {
      if (error.status === 404) return null;
      throw error;
    }
  }

  /**
   * The names of the images with a preview saved at `epoch`: the fixed set, and that epoch's
   * worst and pinned images (so they differ from epoch to epoch); none for an epoch without.
   * @param {number | null} epoch
   * @returns {Promise<Set<string>>}
   */
  async previewNames(epoch) {
    const { previews } = this.options;
    if (epoch === null || !previews.epochs.includes(epoch)) return new Set();
    const body = await previews.fetchEpoch(epoch);
    return new Set(body.samples.map((sample) => sample.name));
  }

  followChoice() {
    const { choice, panel } = this.options;
    if (choice.current === null) return;
    panel.hidden = false;
    this.renderSelectors();
    if (choice.current !== this.state.epoch) this.change({ epoch: choice.current });
  }

  /** A `validation` event: trends have a new point. */
  newEpoch() {
    this.trends.clear();
  }

  renderSelectors() {
    const { choice } = this.options;
    const options = (epochs) => epochs.map((epoch) => el("option", { value: String(epoch) }, `epoch ${epoch}`));
    this.epochSelect.replaceChildren(...options(choice.epochs));
    if (choice.current !== null) this.epochSelect.value = String(choice.current);
    this.worseSelect.replaceChildren(el("option", { value: "" }, "any (no filter)"),
      ...options(choice.epochs.filter((epoch) => epoch !== choice.current)));
    this.worseSelect.value = this.state.worseThan === null ? "" : String(this.state.worseThan);
    if (this.classSelect.options.length !== this.classNames.length + 1) {
      this.classSelect.replaceChildren(el("option", { value: "" }, "any class"),
        ...this.classNames.map((name) => el("option", { value: name }, name)));
    }
    this.classSelect.value = this.state.className;
    this.sortSelect.value = this.state.sort;
    const { sort } = this.state;
    this.orderSelect.replaceChildren(...["asc", "desc"].map((order) => el("option", { value: order },
      orderLabel(sort, /** @type {"asc" | "desc"} */ (order)))));
    this.orderSelect.value = this.state.order;
  }

  /** @param {Partial<import("./pure/image_list.js").ImageListState>} changes */
  async change(changes) {
    this.state = update(this.state, changes);
    this.renderSelectors();
    const token = ++this.token;
    this.table.setAttribute("aria-busy", "true");
    try {
      const body = await api(`/api/v1/runs/${this.options.runId}/images?${imagesQuery(this.state)}`);
      if (token === this.token) this.show(body);
    } catch (error) {
      if (token === this.token) this.options.onError(error);
    } finally {
      if (token === this.token) this.table.removeAttribute("aria-busy");
    }
  }

  /** @param {any} body a page of GET /images */
  async show(body) {
    this.items = body.items;
    this.total = body.total;
    this.classNames = body.class_names;
    if (this.state.epoch === null) this.state = { ...this.state, epoch: body.epoch };
    const { from, previous, next } = pageInfo(body.total, this.state.offset, this.state.limit);
    this.pageText.textContent = pageText(body.total, this.state.offset, this.state.limit);
    this.pager[0].disabled = previous === null;
    this.pager[1].disabled = previous === null;
    this.pager[2].disabled = next === null;
    this.pager[3].disabled = next === null;
    const withPreview = await this.previewNames(body.epoch).catch(() => new Set());
    const then = this.state.worseThan;
    const { previews, canChange } = this.options;
    const pinned = previews.pinnedIndices();
    const head = el("tr", {}, ...["#", "Image", "IoU", "Dice", "Pixels wrong", "Classes in truth", "IoU by epoch", "Preview"]
      .map((label, i) => el("th", { scope: "col", class: i >= 2 && i <= 4 ? "num" : "" }, label)),
    then === null ? null : el("th", { scope: "col", class: "num" }, `IoU at epoch ${then}`),
    el("th", { scope: "col" }, "Pinned"));
    const rows = body.items.map((item, i) => {
      const trend = el("td", { class: "trend", "data-index": String(item.index) });
      const open = el("button", {
        type: "button", class: "link-button image-open", title: `Open ${item.name} at epoch ${body.epoch}`,
        onclick: () => this.open(item),
      }, item.name);
      const share = item.pixels ? ` (${((100 * item.pixels_wrong) / item.pixels).toFixed(1)}%)` : "";
      const row = el("tr", { "data-image": item.name, "data-index": String(item.index) },
        el("td", { class: "num muted" }, String(from + i)),
        el("th", { scope: "row" }, open),
        el("td", { class: "num" }, formatNumber(item.iou, 4)),
        el("td", { class: "num" }, formatNumber(item.dice, 4)),
        el("td", { class: "num" }, `${item.pixels_wrong.toLocaleString("en-US")}${share}`),
        el("td", { class: "classes" }, item.classes_present.join(", ") || "–"),
        trend,
        el("td", { class: "preview-mark" }, withPreview.has(item.name) ? "saved" : predictedMark(item.predicted_epochs)),
        then === null ? null : el("td", { class: "num" }, item.then ? formatNumber(item.then.iou, 4) : "–"),
        el("td", { class: "pin-cell" },
          el("span", { class: "pinned-mark" }, pinned.has(item.index) ? "pinned" : ""),
          canChange && previews.pinBar ? pinToggle(previews, item.index, item.name) : null));
      row.classList.toggle("pinned", pinned.has(item.index));
      this.observer.observe(trend);
      return row;
    });
    const empty = el("tr", {}, el("td", { colspan: "10", class: "muted" },
      then === null ? "No image matches." : `No image has a lower IoU than at epoch ${then}.`));
    this.table.dataset.epoch = String(body.epoch);
    this.renderSelectors();
    this.table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...(rows.length ? rows : [empty])));
    // An image left open follows the epoch while it is on the page shown.
    const opened = this.opened && !this.viewer.hidden && this.viewer.dataset.epoch !== String(body.epoch)
      ? body.items.find((item) => item.name === this.opened.name) : null;
    if (opened) this.open(opened);
  }

  /**
   * The list's row of `item` says it was predicted from the weights of `epoch` (a job just did).
   * @param {any} item
   * @param {number} epoch
   */
  markPredicted(item, epoch) {
    const shown = this.items.find((each) => each.index === item.index && each.name === item.name);
    if (!shown) return;
    const epochs = shown.predicted_epochs || [];
    if (!epochs.includes(epoch)) shown.predicted_epochs = [...epochs, epoch].sort((a, b) => a - b);
    const cell = this.table.querySelector(`tbody tr[data-index="${item.index}"] td.preview-mark`);
    if (cell && cell.textContent !== "saved") cell.replaceChildren(predictedMark(shown.predicted_epochs));
  }

  /** @param {number} index */
  trend(index) {
    let promise = this.trends.get(index);
    if (!promise) {
      promise = api(`/api/v1/runs/${this.options.runId}/images/${index}/trend`);
      promise.catch(() => this.trends.delete(index));
      this.trends.set(index, promise);
    }
    return promise;
  }

  /** A sparkline of the image's IoU in its cell, the epoch shown as a dot. @param {HTMLElement} cell */
  async drawTrend(cell) {
    try {
      const body = await this.trend(Number(cell.dataset.index));
      const values = body.points.map((point) => point.iou);
      const marked = body.points.findIndex((point) => point.epoch === this.state.epoch);
      const range = sparkRange(values);
      const { path, dot } = sparkline(values, SPARK_WIDTH, SPARK_HEIGHT, marked, 3, range);
      const chart = svg("svg", {
        width: String(SPARK_WIDTH), height: String(SPARK_HEIGHT), viewBox: `0 0 ${SPARK_WIDTH} ${SPARK_HEIGHT}`,
        class: "sparkline", role: "img",
        "aria-label": `IoU of ${body.name} by epoch: ${body.points.map((point) => `${point.epoch}: ${point.iou.toFixed(3)}`).join(", ")}`,
      });
      chart.append(svg("path", { d: path, fill: "none", stroke: "#2563eb", "stroke-width": "1.5" }));
      if (dot) chart.append(svg("circle", { cx: String(dot.x), cy: String(dot.y), r: "2.5", fill: "#b45309" }));
      const title = svg("title", {});
      title.textContent = `IoU from ${range[0].toFixed(2)} (bottom) to ${range[1].toFixed(2)} (top)\n` + body.points.map((point) => `epoch ${point.epoch}: IoU ${point.iou.toFixed(4)}`).join("\n");
      chart.append(title);
      cell.replaceChildren(chart);
    } catch (error) {
      cell.textContent = "–";
      cell.title = error.message;
    }
  }

  /**
   * A preview sample's scores at `epoch` (for the previews' score lines), from its trend; null
   * when the sample is not that validation image or the epoch has no scores.
   * @param {any} sample
   * @param {number} epoch
   */
  async scoreOf(sample, epoch) {
    const body = await this.trend(sample.sample_index);
    if (body.name !== sample.name) return null;
    const point = body.points.find((item) => item.epoch === epoch);
    return point || null;
  }

  /** Show the image's views at the epoch shown, or say plainly that none was saved. @param {any} item */
  async open(item) {
    this.opened = { name: item.name, index: item.index };
    const epoch = this.state.epoch;
    const { previews } = this.options;
    const close = el("button", { type: "button", class: "viewer-close", onclick: () => { this.viewer.hidden = true; this.viewerTiles = []; } }, "Close");
    const heading = el("div", { class: "viewer-head" },
      el("h3", {}, `${item.name} at epoch ${epoch}`),
      el("span", { class: "sample-score" }, scoreText({ epoch, ...item })),
      close);
    this.viewer.hidden = false;
    this.viewer.dataset.image = item.name;
    this.viewer.dataset.epoch = String(epoch);
    this.viewer.replaceChildren(heading, el("p", { class: "muted" }, "loading…"));
    this.viewer.scrollIntoView({ block: "nearest" });
    let sample = null;
    if (previews.epochs.includes(epoch)) {
      try {
        const body = await previews.fetchEpoch(epoch);
        sample = body.samples.find((candidate) => candidate.name === item.name)
          || body.samples.find((candidate) => candidate.sample_index === item.index && !candidate.name);
      } catch (error) {
        this.options.onError(error);
      }
    }
    if (!this.opened || this.opened.name !== item.name) return;
    if (!sample) {
      this.viewerTiles = [];
      const saved = [...await this.previewNames(epoch).catch(() => new Set())];
      const why = saved.length
        ? `Previews saved at epoch ${epoch} (the fixed set, and that epoch's worst and pinned images): ${saved.join(", ")}.`
        : previews.epochs.length ? `No previews were saved at epoch ${epoch}.` : "This run saved no previews.";
      this.viewer.dataset.preview = "none";
      const predict = el("div", { class: "viewer-predict" });
      this.viewer.replaceChildren(heading, el("p", { class: "viewer-none", role: "status" },
        `No prediction of ${item.name} was saved at epoch ${epoch}. ${why}`), predict);
      await this.offerPrediction(item, epoch, heading, predict);
      return;
    }
    this.showTiles(heading, sample, null);
  }

  /**
   * The five views of `sample` below `heading`, with `note` (where the prediction came from).
   * @param {HTMLElement} heading
   * @param {any} sample {name, image_url, truth_url, prediction_url}
   * @param {HTMLElement | null} note
   */
  showTiles(heading, sample, note) {
    const tiles = KINDS.map((kind) => tile(kind, sample, this.options.previews.view));
    this.viewerTiles = tiles;
    this.viewer.dataset.preview = note ? "predicted" : "shown";
    this.viewer.replaceChildren(heading, ...(note ? [note] : []),
      el("div", { class: "sample-tiles" }, ...tiles.map((each) => each.element)));
    this.viewer.focus({ preventScroll: true });
  }

  /** Whether `item` at `epoch` is still the image the viewer shows. @param {any} item @param {number | null} epoch */
  stillOpen(item, epoch) {
    return !this.viewer.hidden && this.opened !== null && this.opened.name === item.name
      && this.viewer.dataset.epoch === String(epoch);
  }

  /**
   * Under the "no prediction saved" line: the button that asks a worker for one from the
   * checkpoint nearest `epoch`, or the job already asked for (followed, or shown when done).
   * @param {any} item
   * @param {number | null} epoch
   * @param {HTMLElement} heading
   * @param {HTMLElement} area
   */
  async offerPrediction(item, epoch, heading, area) {
    const runId = this.options.runId;
    let checkpoints = [];
    try {
      checkpoints = (await api(`/api/v1/runs/${runId}/checkpoints`)).checkpoints;
    } catch (error) {
      area.replaceChildren(el("p", { class: "muted" }, `The run's checkpoints could not be read: ${messageOf(error)}`));
      return;
    }
    if (!this.stillOpen(item, epoch)) return;
    const nearest = nearestCheckpoint(checkpoints, epoch ?? 0);
    if (!nearest) {
      area.replaceChildren(el("p", { class: "muted" }, "The run has no checkpoint to predict it from."));
      return;
    }
    const earlier = await this.earlierJob(item, nearest).catch(() => null);
    if (!this.stillOpen(item, epoch)) return;
    if (earlier) {
      this.follow(earlier, item, epoch, heading, area);
      return;
    }
    if (!this.options.canChange) {
      area.replaceChildren(el("p", { class: "muted" }, "Only the run's owner (or an admin) may ask a worker to predict it."));
      return;
    }
    const button = el("button", {
      type: "button", id: "image-predict", class: "button",
      title: `Ask a worker to predict ${item.name} with the ${nearest.kind} checkpoint (epoch ${nearest.epoch}), the one nearest epoch ${epoch}`,
    }, `Predict from checkpoint (epoch ${nearest.epoch})`);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const job = await api(`/api/v1/runs/${runId}/jobs`, {
          method: "POST", json: { kind: "predict_image", image: item.index, epoch },
        });
        if (this.stillOpen(item, epoch)) this.follow(job, item, epoch, heading, area);
      } catch (error) {
        button.disabled = false;
        area.append(el("p", { class: "error", role: "alert" }, messageOf(error)));
      }
    });
    area.replaceChildren(button);
  }

  /**
   * A predict_image job of the image from that checkpoint that is pending or succeeded.
   * @param {any} item
   * @param {{kind: string, epoch: number}} checkpoint
   */
  async earlierJob(item, checkpoint) {
    const { items } = await api(`/api/v1/runs/${this.options.runId}/jobs?limit=200`);
    return items.find((/** @type {any} */ job) => job.kind === "predict_image"
      && job.parameters.image_index === item.index && job.parameters.image_name === item.name
      && job.parameters.checkpoint === checkpoint.kind && job.parameters.checkpoint_epoch === checkpoint.epoch
      && (job.status === "succeeded" || PENDING.includes(job.status))) || null;
  }

  /**
   * Show the job's progress until it ends (its events, and a slow read in case the stream is
   * away), then its prediction or why there is none.
   * @param {any} job
   * @param {any} item
   * @param {number | null} epoch
   * @param {HTMLElement} heading
   * @param {HTMLElement} area
   */
  follow(job, item, epoch, heading, area) {
    const line = el("p", { id: "image-predict-status", class: "muted", role: "status", "aria-live": "polite" });
    area.replaceChildren(line);
    /** @type {() => void} */
    let stop = () => {};
    let timer = 0;
    const finish = () => { stop(); window.clearTimeout(timer); };
    /** @param {any} current */
    const render = (current) => {
      if (!this.stillOpen(item, epoch)) { finish(); return; }
      if (PENDING.includes(current.status)) {
        line.textContent = `Job #${current.id}: ${progressText(current)}`;
        line.dataset.status = current.status;
        return;
      }
      finish();
      if (current.status === "succeeded" && current.result) {
        const r = current.result;
        const note = el("p", { class: "viewer-predicted", id: "image-predict-note" },
          `Predicted by job #${current.id} from the ${r.checkpoint} checkpoint: the weights of epoch ${r.epoch}`,
          r.epoch === epoch ? "." : ` (nearest the epoch ${epoch} shown; the scores above are epoch ${epoch}'s).`);
        this.showTiles(heading, {
          name: item.name, sample_index: item.index,
          image_url: r.image_url, truth_url: r.truth_url, prediction_url: r.prediction_url,
        }, note);
        this.markPredicted(item, r.epoch);
        return;
      }
      line.dataset.status = current.status;
      line.className = current.status === "failed" ? "error" : "muted";
      line.textContent = `Job #${current.id} ${current.status}: ${current.reason || "no reason given"}`;
    };
    const read = async () => {
      try {
        render(await api(`/api/v1/jobs/${job.id}`));
      } catch (error) {
        line.textContent = `Job #${job.id}: ${messageOf(error)}`;
      }
    };
    const poll = () => {
      timer = window.setTimeout(async () => {
        await read();
        if (PENDING.includes(line.dataset.status || "")) poll();
      }, JOB_POLL_MS);
    };
    stop = onJobEvent(this.options.runId, (event) => { if (event.job_id === job.id) read(); });
    render(job);
    if (PENDING.includes(job.status)) poll();
  }
}
