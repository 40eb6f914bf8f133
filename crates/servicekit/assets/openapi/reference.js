// The service's OpenAPI reference: Scalar (scalar.js, served beside this
// page) on the document of this service, with nothing fetched from
// elsewhere: no web fonts, no proxy, no telemetry.
Scalar.createApiReference('#app', {
  url: '/api-docs/openapi.json',
  withDefaultFonts: false,
  proxyUrl: '',
  telemetry: false,
  hideClientButton: true,
});
