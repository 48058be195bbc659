// The run page's Model card: what the model costs, measured by the trainer on the training
// device before epoch 1 (parameters, FLOPs per image, latency, images/s), and the peak training
// memory so far. Hidden for runs with neither (older and external runs).

import { el } from "./dom.js";
import { NOT_MEASURED, cardRows, peakMemoryMib } from "./pure/model_card.js";

/**
 * Fill `list` with the card of `run` (GET /api/v1/runs/{id}) and show `panel` when there is one.
 * @param {any} run
 * @param {HTMLElement} panel
 * @param {HTMLElement} list the panel's <dl>
 */
export function show(run, panel, list) {
  const card = run.run_info ? run.run_info.model_card : null;
  const config = run.config || {};
  const freeze = Number(config.freeze_encoder_epochs) || 0;
  // Frozen for every epoch the run has: the count holds throughout.
  const frozen = freeze < (Number(config.epochs) || 0) ? freeze : 0;
  const rows = cardRows(card, peakMemoryMib(run.metrics), frozen);
  panel.hidden = !rows.length;
  list.replaceChildren(...rows.map((row) => el("div", { class: "fact", "data-card": row.label },
    el("dt", {}, row.label),
    el("dd", { title: row.title, class: row.value === NOT_MEASURED ? "muted" : null }, row.value))));
  const note = panel.querySelector(".model-card-note");
  if (note instanceof HTMLElement) note.hidden = Boolean(card);
}
