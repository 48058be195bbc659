// Lint of the browser modules and their node unit tests (`npx eslint web/static/js tests/js`):
// ESLint's recommended rules, with the globals each side really has, so a name that is neither
// imported nor a browser (or node) global is an error.
import js from "@eslint/js";
import globals from "globals";

export default [
  // Classic scripts that are not ES modules yet.
  { ignores: ["web/static/js/api.js", "web/static/js/charts.js", "web/static/js/compare.js", "web/static/js/config_form.js", "web/static/js/config_view.js", "web/static/js/datasets.js", "web/static/js/forms.js", "web/static/js/masks.js", "web/static/js/new_run.js", "web/static/js/previews.js", "web/static/js/run.js", "web/static/js/run_info.js", "web/static/js/run_metrics.js", "web/static/js/run_origin.js", "web/static/js/runs.js", "web/static/js/runs_rows.js", "web/static/js/series_math.js", "web/static/js/ui.js", "web/static/js/workers.js"] },
  js.configs.recommended,
  {
    files: ["web/static/js/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.browser },
    rules: {
      "no-undef": "error",
      "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
    },
  },
  {
    files: ["tests/js/**/*.js", "eslint.config.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.node },
    rules: { "no-undef": "error" },
  },
];
