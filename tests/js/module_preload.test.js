// The compare and sweep pages preload every module they import (web/templates/<page>.html), so
// their scripts arrive in one round of requests: each list must stay its page's whole module graph.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

const STATIC = path.resolve("web/static");

/** @param {string} file @param {Set<string>} seen */
function graph(file, seen = new Set()) {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const match of fs.readFileSync(file, "utf8").matchAll(/^import[^"']*["'](\.[^"']+)["']/gm)) {
    graph(path.resolve(path.dirname(file), match[1]), seen);
  }
  return seen;
}

for (const page of ["compare", "sweep"]) {
  test(`${page}.html preloads exactly the modules ${page}.js imports, itself included`, () => {
    const template = fs.readFileSync(`web/templates/${page}.html`, "utf8");
    const preloaded = [...template.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map((match) => match[1]).sort();
    const imported = [...graph(path.join(STATIC, `js/${page}.js`))].map((file) => `/static${file.slice(STATIC.length)}`).sort();
    assert.deepEqual(preloaded, imported);
  });
}
