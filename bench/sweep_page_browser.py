"""A sweep of 1,000 finished trials, its page opened in Chromium: time until it is ready.

    .venv/bin/python -m bench.sweep_page_browser              # 1,000 trials of 10 epochs
    .venv/bin/python -m bench.sweep_page_browser --trials 200

What it does, so that the figures mean something:
- The same scratch PostgreSQL database, `segtrack serve` and 1,000-trial bayes sweep as
  `bench.sweep_page` (its `fill`: three swept keys, one log-uniform, 85 % succeeded, 10 % pruned,
  5 % failed, 10 per-epoch val/iou points each).
- Debian's Chromium (headless, through Playwright) signs in with the admin's token link, opens
  /sweeps/{id} 3 times untimed, then 10 times timed. "ready" is the page's own performance mark
  `sweep-ready`, measured from the start of the navigation: the HTML with the sweep in it (what
  GET /api/v1/sweeps/{id} answers: every run, best run, best-so-far, importance), the scripts,
  the top runs' curves' GET, and every part drawn (progress, best run, importance, the
  parallel-coordinates plot of 1,000 lines, the scatter, the best-so-far and top-runs charts),
  painted (an animation frame, then a task). The runs table (its best 100 rows) is filled just
  after that mark, and is not in the figure: "table filled" says when it was.
- Also printed: the page's own marks on the way (HTML in, data parsed, drawn, curves in); the
  last load is saved as .screenshots/sweep-page-1000-trials.png.

The target of issue 12: a sweep of 1,000 finished trials, its page ready in at most 300 ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.harness import ms, percentile, print_table, scratch_database, segtrack_api, segtrack_env
from bench.sweep_page import EPOCHS, fill

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).parents[1] / ".screenshots" / "sweep-page-1000-trials.png"
TRIES = 10
WARM_UP = 3
STAGES = {
    "html": "page HTML in (with the sweep)",
    "fetched": "sweep data parsed",
    "drawn": "drawn",
    "seriesSent": "top runs' curves GET sent",
    "seriesIn": "top runs' curves GET answered",
    "curves": "top runs' curves drawn",
    "ready": "page ready (painted)",
    "table": "runs table filled",
}
READY_JS = """() => {
    const mark = (name) => performance.getEntriesByName(name)[0].startTime;
    const series = performance.getEntriesByType("resource")
        .find((entry) => entry.name.includes("/api/v1/metrics/series"));
    return {seriesSent: series.startTime, seriesIn: series.responseEnd,
            html: performance.getEntriesByType("navigation")[0].responseEnd,
            fetched: mark("sweep-data"), drawn: mark("sweep-drawn"), curves: mark("sweep-curves"),
            ready: mark("sweep-ready"), table: mark("sweep-table"),
            lines: document.querySelector("#parallel canvas").dataset.lines,
            rows: document.querySelectorAll("#trials-table tbody tr").length};
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, scratch_database("segtrack_bench_sweep") as url:
        env = segtrack_env(url, Path(folder) / "data", None, {"SEGTRACK_SWEEP_INTERVAL_S": "0"})
        with segtrack_api(env, Path(folder) / "api.log") as api, sync_playwright() as playwright:
            sweep_id = fill(url, args.trials)
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{api.url}/sweeps?token={api.token}")
            times: dict[str, list[float]] = {key: [] for key in STAGES}
            for attempt in range(WARM_UP + TRIES):
                page.goto(f"{api.url}/sweeps/{sweep_id}")
                page.wait_for_selector("#sweep-page[data-ready]", state="attached")
                figures = page.evaluate(READY_JS)
                if attempt >= WARM_UP:
                    for key in STAGES:
                        times[key].append((figures[key] or 0) / 1000)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            browser.close()
    print_table(
        f"/sweeps/{{id}} in Chromium, {args.trials:,} finished trials of {EPOCHS} epochs "
        f"({figures['lines']} plotted lines, {figures['rows']} table rows), {TRIES} loads after "
        f"{WARM_UP} warm-up (ms from navigation start)",
        ["stage", "median", "p95"],
        [
            (label, ms(statistics.median(times[key])), ms(percentile(times[key], 0.95)))
            for key, label in STAGES.items()
        ],
    )


if __name__ == "__main__":
    main()
