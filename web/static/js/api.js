// Shared helpers for every page: API calls, live events, safe DOM building, formatting.
"use strict";

const segtrack = (() => {
  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `request failed with status ${status}`);
      this.status = status;
      this.code = error.code;
      this.details = error.details;
    }
  }

  // The page's CSRF token: every state-changing request of a signed-in browser must send it.
  function csrfHeaders(method) {
    const meta = document.querySelector('meta[name="csrf-token"]');
    const safe = !method || method === "GET" || method === "HEAD";
    return !safe && meta ? { "X-CSRF-Token": meta.getAttribute("content") } : {};
  }

  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...csrfHeaders(options.method), ...(options.headers || {}) };
    const init = { ...options, headers };
    if (options.json !== undefined) {
      init.body = JSON.stringify(options.json);
      init.headers["Content-Type"] = "application/json";
      delete init.json;
    }
    const response = await fetch(path, init);
    const text = await response.text();
    const body = text ? JSON.parse(text) : null;
    if (response.status === 401) {
      // Signed out (session expired or revoked): sign in again and come back here.
      window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`);
    }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  // Server-Sent Events with automatic reconnect (the browser resumes with Last-Event-ID). The
  // browser gives up on an error answer instead (429 while too many streams are open, 401 once
  // signed out): then a new stream is opened a little later. Returns the first stream.
  const RESUBSCRIBE_MS = 5000;
  function subscribe(path, onEvent) {
    const indicator = document.getElementById("live-status");
    const show = (state) => {
      if (indicator) { indicator.dataset.state = state; indicator.textContent = state === "live" ? "● live" : "○ reconnecting"; }
    };
    const connect = () => {
      const source = new EventSource(path);
      source.onopen = () => show("live");
      source.onerror = () => {
        show("offline");
        if (source.readyState === EventSource.CLOSED) setTimeout(connect, RESUBSCRIBE_MS);
      };
      source.onmessage = (message) => onEvent(JSON.parse(message.data));
      for (const kind of ["status", "metrics", "preview", "checkpoint", "run", "dataset"]) {
        source.addEventListener(kind, (message) => onEvent(JSON.parse(message.data)));
      }
      return source;
    };
    return connect();
  }

  // Build elements without innerHTML so nothing users typed can become markup.
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function formatNumber(value, digits = 4) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    return Number(value).toFixed(digits);
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.round(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  }

  function formatTime(iso) {
    return iso ? new Date(iso).toLocaleString() : "–";
  }

  return { api, ApiError, subscribe, el, formatNumber, formatDuration, formatTime };
})();
