// Starts Swagger UI on this gateway's /openapi.json. A file, not an inline script, so that the
// page's Content-Security-Policy can refuse every inline script.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#explorer",
  // The base layout alone: the standalone preset's top bar would load other documents.
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // The gateway answers reads only.
  supportedSubmitMethods: ["get", "head"],
  // No validator badge, which Swagger UI would fetch from elsewhere.
  validatorUrl: null,
  // This gateway's document only: no ?url= or ?configUrl= taken from the address bar.
  queryConfigEnabled: false,
  deepLinking: true,
  displayRequestDuration: true,
});
