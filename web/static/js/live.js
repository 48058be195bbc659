// Live updates: Server-Sent Events with reconnects, and the header's live indicator.

const RESUBSCRIBE_MS = 5000;
const EVENT_KINDS = ["status", "metrics", "preview", "checkpoint", "run", "dataset", "file", "sweep", "validation", "job"];

/**
 * Call `onEvent` with each event of the stream at `path`. The browser reconnects by itself
 * (resuming with Last-Event-ID); it gives up on an error answer instead (429 while too many
 * streams are open, 401 once signed out), and then a new stream is opened a little later.
 * @param {string} path
 * @param {(event: any) => void} onEvent
 * @returns {EventSource} the first stream
 */
export function subscribe(path, onEvent) {
  const indicator = document.getElementById("live-status");
  /** @param {"live" | "offline"} state */
  const show = (state) => {
    if (!indicator) return;
    indicator.dataset.state = state;
    indicator.textContent = state === "live" ? "● live" : "○ reconnecting";
  };
  const connect = () => {
    const source = new EventSource(path);
    source.onopen = () => show("live");
    source.onerror = () => {
      show("offline");
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, RESUBSCRIBE_MS);
    };
    source.onmessage = (message) => onEvent(JSON.parse(message.data));
    for (const kind of EVENT_KINDS) {
      source.addEventListener(kind, (message) => onEvent(JSON.parse(/** @type {MessageEvent} */ (message).data)));
    }
    return source;
  };
  return connect();
}

/**
 * Resolves with "open" once the stream is connected, "closed" when it gave up, or "timeout"
 * after `timeoutMs` (the page then renders without waiting longer). Call it right after the
 * stream is made, before anything else is awaited: an `open` event that fired while the page
 * was awaiting something else is never seen again, and the page would wait out the timeout.
 * @param {EventSource} source
 * @param {number} timeoutMs
 * @returns {Promise<"open" | "closed" | "timeout">}
 */
export function streamOpened(source, timeoutMs) {
  return new Promise((resolve) => {
    if (source.readyState === EventSource.OPEN) { resolve("open"); return; }
    /** @param {"open" | "closed" | "timeout"} how */
    const done = (how) => { clearTimeout(timer); resolve(how); };
    const timer = setTimeout(() => done("timeout"), timeoutMs);
    source.addEventListener("open", () => done("open"), { once: true });
    source.addEventListener("error", () => { if (source.readyState === EventSource.CLOSED) done("closed"); });
  });
}
