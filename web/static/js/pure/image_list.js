// State of the run page's "Images" list: which epoch, sort, order, class and "worse than" epoch,
// which page; the query it sends to GET /api/v1/runs/{id}/images, the pager's text, what it says
// of an image already predicted, and the per-image trend drawn as a sparkline.

/** @typedef {"iou" | "dice" | "pixels_wrong" | "name"} SortKey */
/** @typedef {"asc" | "desc"} Order */

/**
 * @typedef {object} ImageListState
 * @property {number | null} epoch a stored epoch (null: the latest)
 * @property {SortKey} sort
 * @property {Order} order
 * @property {string} className "" for any class
 * @property {number | null} worseThan only images whose IoU is lower than at this epoch
 * @property {number} offset
 * @property {number} limit
 */

/** The sort keys with their labels, in the order the list offers them. */
export const SORTS = Object.freeze(/** @type {ReadonlyArray<[SortKey, string]>} */ ([
  ["iou", "IoU"], ["dice", "Dice"], ["pixels_wrong", "Pixels wrong"], ["name", "Name"],
]));

export const PAGE_SIZE = 25;

/**
 * The order that puts the worst images first for a sort key: lowest IoU or Dice, most pixels
 * wrong; names A to Z.
 * @param {SortKey} sort
 * @returns {Order}
 */
export function worstFirst(sort) {
  return sort === "pixels_wrong" ? "desc" : "asc";
}

/**
 * The label of `order` for `sort` ("worst first", "best first"; names "A to Z", "Z to A").
 * @param {SortKey} sort
 * @param {Order} order
 */
export function orderLabel(sort, order) {
  if (sort === "name") return order === "asc" ? "A to Z" : "Z to A";
  return order === worstFirst(sort) ? "worst first" : "best first";
}

/** @returns {ImageListState} */
export function initialState() {
  return { epoch: null, sort: "iou", order: "asc", className: "", worseThan: null, offset: 0, limit: PAGE_SIZE };
}

/**
 * `state` with `changes` applied; any change but the page's goes back to the first page, and a
 * new sort key starts worst first (unless an order comes with it).
 * @param {ImageListState} state
 * @param {Partial<ImageListState>} changes
 * @returns {ImageListState}
 */
export function update(state, changes) {
  const next = { ...state, ...changes };
  if (changes.sort !== undefined && changes.sort !== state.sort && changes.order === undefined) {
    next.order = worstFirst(changes.sort);
  }
  const onlyPaging = Object.keys(changes).every((key) => key === "offset");
  if (!onlyPaging && changes.offset === undefined) next.offset = 0;
  // "Worse than" the epoch shown is always empty: dropped.
  if (next.worseThan !== null && next.worseThan === next.epoch) next.worseThan = null;
  return next;
}

/**
 * The query string of GET /api/v1/runs/{id}/images for `state`.
 * @param {ImageListState} state
 */
export function imagesQuery(state) {
  const params = new URLSearchParams({
    sort: state.sort, order: state.order, limit: String(state.limit), offset: String(state.offset),
  });
  if (state.epoch !== null) params.set("epoch", String(state.epoch));
  if (state.className) params.set("class", state.className);
  if (state.worseThan !== null) params.set("worse_than", String(state.worseThan));
  return params.toString();
}

/**
 * The pager for `total` images: the rows shown (1-based), the page and page count, and the
 * offsets of the neighbouring pages (null at either end).
 * @param {number} total
 * @param {number} offset
 * @param {number} limit
 */
export function pageInfo(total, offset, limit) {
  const pages = Math.max(1, Math.ceil(total / limit));
  const page = Math.min(pages, Math.floor(offset / limit) + 1);
  const from = total ? Math.min(total, offset + 1) : 0;
  const to = Math.min(total, offset + limit);
  return {
    page, pages, from, to,
    previous: offset > 0 ? Math.max(0, offset - limit) : null,
    next: offset + limit < total ? offset + limit : null,
    last: (pages - 1) * limit,
  };
}

/**
 * The pager's text: "26–50 of 1,234 images" or "no images".
 * @param {number} total
 * @param {number} offset
 * @param {number} limit
 */
export function pageText(total, offset, limit) {
  if (!total) return "no images";
  const { from, to, page, pages } = pageInfo(total, offset, limit);
  const count = total.toLocaleString("en-US");
  return `${from}–${to} of ${count} image${total === 1 ? "" : "s"} (page ${page} of ${pages})`;
}

/**
 * What the Images list says of an image predicted from checkpoints of `epochs` (ascending):
 * "predicted (epoch 4)", "predicted (epochs 2, 4)".
 * @param {number[]} epochs
 */
export function predictedText(epochs) {
  return `predicted (epoch${epochs.length === 1 ? "" : "s"} ${epochs.join(", ")})`;
}

/**
 * The stored epoch nearest `epoch` (the earlier one on a tie); null when there are none.
 * @param {number[]} epochs ascending
 * @param {number} epoch
 */
export function nearestEpoch(epochs, epoch) {
  /** @type {number | null} */
  let best = null;
  for (const candidate of epochs) {
    if (best === null || Math.abs(candidate - epoch) < Math.abs(best - epoch)) best = candidate;
  }
  return best;
}

/**
 * The y range of a sparkline: the values' own, widened to at least `minSpan` around their middle
 * (a flat trend stays flat instead of magnifying noise), kept within 0..1.
 * @param {number[]} values scores in 0..1
 * @param {number} [minSpan]
 * @returns {[number, number]}
 */
export function sparkRange(values, minSpan = 0.1) {
  if (!values.length) return [0, 1];
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (high - low < minSpan) {
    const middle = (low + high) / 2;
    low = middle - minSpan / 2;
    high = middle + minSpan / 2;
  }
  if (low < 0) { high = Math.min(1, high - low); low = 0; }
  if (high > 1) { low = Math.max(0, low - (high - 1)); high = 1; }
  return [low, high];
}

/**
 * An SVG path of `values` over `width` x `height` (`range`'s top at the top, its bottom at the
 * bottom), and the position of the point at `marked` (an index) for a dot.
 * @param {number[]} values scores in 0..1
 * @param {number} width
 * @param {number} height
 * @param {number} [marked] the index to mark (-1: none)
 * @param {number} [pad] pixels kept free at the edges
 * @param {[number, number]} [range] the y values at the bottom and the top
 */
export function sparkline(values, width, height, marked = -1, pad = 2, range = [0, 1]) {
  const inner = { width: width - 2 * pad, height: height - 2 * pad };
  const [low, high] = range;
  const span = high - low || 1;
  const x = (/** @type {number} */ i) => pad + (values.length < 2 ? inner.width / 2 : (i * inner.width) / (values.length - 1));
  const y = (/** @type {number} */ v) => pad + (1 - Math.min(1, Math.max(0, (v - low) / span))) * inner.height;
  const round = (/** @type {number} */ n) => Math.round(n * 10) / 10;
  const path = values.map((v, i) => `${i ? "L" : "M"}${round(x(i))},${round(y(v))}`).join("");
  const dot = marked >= 0 && marked < values.length ? { x: round(x(marked)), y: round(y(values[marked])) } : null;
  return { path, dot };
}
