// The class legend next to mask previews: a colour input, the name and an "overlay" toggle per
// class, a note on who else sees a colour change, and how saving it went.

import { el } from "./dom.js";

/**
 * Where a colour change goes, said next to the colour inputs: a registered dataset's colours are
 * shared by every run of it, so changing one here is not a change to this run only.
 */
/** @param {import("./class_palette.js").Palette} palette */
function scopeNote(palette) {
  if (palette.datasetId !== null) {
    const name = palette.datasetName || `dataset ${palette.datasetId}`;
    if (!palette.editable) return `Colours belong to dataset ${name}, shared by everyone; you may only read them.`;
    return `Colours belong to dataset ${name}: changing one here changes it for every run of ${name}, on every page and for everyone (the Datasets page edits the same colours).`;
  }
  return "Colours are kept in this browser only: other browsers and people still see the defaults.";
}

/**
 * Swatch (a colour input) + name + "in overlay" toggle per class; follows the palette.
 * @param {import("./class_palette.js").Palette} palette
 * @param {{idPrefix?: string}} [options] prefix of the inputs' ids
 */
export function legend(palette, { idPrefix = "class" } = {}) {
  const statusLine = el("p", { class: "legend-status muted", "aria-live": "polite" });
  const scopeId = `${idPrefix}-colors-scope`;
  const scope = el("p", { class: "legend-scope muted", id: scopeId }, scopeNote(palette));
  const list = el("ul", { class: "class-legend", "aria-label": "Classes", "aria-describedby": scopeId });
  const inputs = palette.names.map((name, index) => {
    const colorId = `${idPrefix}-color-${index}`;
    const color = el("input", { type: "color", id: colorId, value: palette.colors[index], "data-class-index": index, "aria-describedby": scopeId,
      disabled: !palette.editable, title: palette.editable ? `Change the colour of ${name}` : `The colour of ${name}` });
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
