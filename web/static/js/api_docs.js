// The /docs page: Swagger UI (the vendored classic bundle, loaded before this module) over the
// OpenAPI document named by the page, started here so that the page has no inline script.

/** @type {{SwaggerUIBundle: any}} */
const vendored = /** @type {any} */ (globalThis);
const bundle = vendored.SwaggerUIBundle;
const root = document.getElementById("swagger-ui");

bundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [bundle.presets.apis, bundle.SwaggerUIStandalonePreset],
});
