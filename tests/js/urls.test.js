// Where the sign-in page sends the user afterwards: only paths of this site.
import { test } from "node:test";
import assert from "node:assert/strict";

import { safeNext } from "../../web/static/js/pure/urls.js";

test("a local path is kept, with its query", () => {
  assert.equal(safeNext("/runs/3?tab=logs"), "/runs/3?tab=logs");
});

test("other sites and missing values go home", () => {
  for (const next of [null, "", "https://evil.example/", "//evil.example/", "/\\evil.example", "runs/3"]) {
    assert.equal(safeNext(next), "/", String(next));
  }
});
