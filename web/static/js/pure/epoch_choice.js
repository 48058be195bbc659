// The epoch the run page's validation views show (the confusion heatmap and the Images list):
// one of the epochs with stored validation detail, chosen by the previews' slider or the views'
// own selectors, following new epochs while the latest one is shown.

import { nearestEpoch } from "./image_list.js";

export class EpochChoice {
  constructor() {
    /** @type {number[]} epochs with validation detail, ascending */
    this.epochs = [];
    /** @type {number | null} */
    this.current = null;
    /** @type {Set<() => void>} */
    this.listeners = new Set();
  }

  /**
   * Called after every change of the epochs or the current one.
   * @param {() => void} listener
   */
  onChange(listener) {
    this.listeners.add(listener);
  }

  notify() {
    for (const listener of this.listeners) listener();
  }

  /**
   * The stored epochs (as the API lists them); shows the latest when none was chosen.
   * @param {number[]} epochs
   */
  setEpochs(epochs) {
    this.epochs = [...new Set(epochs)].sort((a, b) => a - b);
    if (this.current === null || !this.epochs.includes(this.current)) this.current = this.latest();
    this.notify();
  }

  latest() {
    return this.epochs.length ? this.epochs[this.epochs.length - 1] : null;
  }

  /**
   * Show the stored epoch nearest `epoch`; true when that changed what is shown.
   * @param {number} epoch
   */
  choose(epoch) {
    const chosen = nearestEpoch(this.epochs, epoch);
    if (chosen === null || chosen === this.current) return false;
    this.current = chosen;
    this.notify();
    return true;
  }

  /**
   * A new (or redone) epoch: listed, and shown when the latest one was.
   * @param {number} epoch
   */
  add(epoch) {
    const wasLatest = this.current === this.latest();
    if (!this.epochs.includes(epoch)) {
      this.epochs.push(epoch);
      this.epochs.sort((a, b) => a - b);
    }
    if (wasLatest) this.current = this.latest();
    this.notify();
  }
}
