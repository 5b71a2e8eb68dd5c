// An API on the real OpenTelemetry Node SDK, exporting spans over OTLP/HTTP as JSON
// (@opentelemetry/exporter-trace-otlp-http), configured only by the OTEL_* variables, for
// e2e/test_browser_trace.py. It serves the shop's page (argv[2]: a folder with index.html and
// the bundled app.js, whose @sentry/browser sends the W3C traceparent) and
// GET /api/invoices/<id>, which the page fetches: the browser's trace continues here. Invoice
// 13 is locked: that request records the exception and answers 500. It prints its port, and
// flushes its spans when told to stop (SIGTERM).
//
// CommonJS on purpose: the SDK's http instrumentation patches `require("http")`, which must
// come after `sdk.start()` (an ES module's imports would load http first).
const { NodeSDK } = require("@opentelemetry/sdk-node");
const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-http");
const { HttpInstrumentation } = require("@opentelemetry/instrumentation-http");

const sdk = new NodeSDK({
  traceExporter: new OTLPTraceExporter(),
  instrumentations: [new HttpInstrumentation()],
});
sdk.start();

const fs = require("fs");
const http = require("http");
const path = require("path");
const { trace, SpanStatusCode } = require("@opentelemetry/api");

const site = process.argv[2];
const tracer = trace.getTracer("shop-api");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function invoice(id, res) {
  await tracer.startActiveSpan("load invoice", async (span) => {
    span.setAttribute("invoice.id", id);
    await sleep(20);
    if (id === "13") {
      const error = new Error("invoice 13 is locked");
      span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      span.end();
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: error.message }));
      return;
    }
    span.end();
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ id, total: 42.5 }));
  });
}

const server = http.createServer((req, res) => {
  const match = req.url.match(/^\/api\/invoices\/(\w+)/);
  if (match) {
    invoice(match[1], res);
    return;
  }
  const file = req.url === "/" || req.url.startsWith("/?") ? "index.html" : path.basename(req.url);
  fs.readFile(path.join(site, file), (err, data) => {
    if (err) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { "content-type": file.endsWith(".js") ? "text/javascript" : "text/html" });
    res.end(data);
  });
});

server.listen(0, "127.0.0.1", () => console.log(server.address().port));
process.on("SIGTERM", () => {
  server.close();
  sdk.shutdown().finally(() => process.exit(0));
});
