// A run's `job` events (a job queued, started, being cancelled or ended), for the run page's
// modules that follow jobs (the jobs panel, the Images view's predictions). One stream of that
// kind only, opened on the first listener and shared by all of them.

import { subscribe } from "./live.js";

/** @typedef {{job_id: number, job_kind: string, status: string, run_id: number}} JobEvent */

/** @type {Set<(event: JobEvent) => void>} */
const listeners = new Set();
/** @type {number | null} */
let streamed = null;

/**
 * Call `listener` with each job event of run `runId`; returns a function that stops it.
 * @param {number} runId
 * @param {(event: JobEvent) => void} listener
 * @returns {() => void}
 */
export function onJobEvent(runId, listener) {
  listeners.add(listener);
  if (streamed === null) {
    streamed = runId;
    subscribe(`/api/v1/runs/${runId}/events?kind=job`, (event) => {
      if (event.kind !== "job") return;
      for (const each of [...listeners]) each(event);
    });
  }
  return () => { listeners.delete(listener); };
}
