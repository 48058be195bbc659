// Building and finding elements: `el` makes them without innerHTML, so nothing users typed can
// become markup; `byId` finds one and says which is missing; `say` fills a message region.

/**
 * An element with attributes and children. Attributes: `class`, `dataset` (an object),
 * `on<event>` (a listener), else set as text (true: present, false/null/undefined: left out).
 * Children: nodes, or anything else as text; nested arrays are flattened, null and false skipped.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [attributes]
 * @param {...any} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * The element with this id, checked to be of `kind` (HTMLElement by default); throws naming the
 * id when the page has none, so a template change cannot fail silently.
 * @overload
 * @param {string} id
 * @returns {HTMLElement}
 */
/**
 * @template {HTMLElement} T
 * @overload
 * @param {string} id
 * @param {{new (): T, prototype: T}} kind
 * @returns {T}
 */
/**
 * @param {string} id
 * @param {typeof HTMLElement} [kind]
 * @returns {HTMLElement}
 */
export function byId(id, kind) {
  const node = document.getElementById(id);
  const wanted = kind || HTMLElement;
  if (!(node instanceof wanted)) throw new Error(`the page has no ${wanted.name} #${id}`);
  return /** @type {T} */ (node);
}

/**
 * Show `text` in a message region (role=status or alert); kind is "ok", "error" or "info".
 * Empty text hides the region.
 * @param {HTMLElement} region
 * @param {string} text
 * @param {"ok" | "error" | "info"} [kind]
 */
export function say(region, text, kind = "info") {
  region.textContent = text;
  region.dataset.kind = kind;
  region.hidden = !text;
}
