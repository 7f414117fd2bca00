// Starts Swagger UI on the gateway's own OpenAPI document. It lives in a file
// (not an inline script) so the page's CSP can forbid inline code; the
// validator badge is off because it would call a third-party server.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: false,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
