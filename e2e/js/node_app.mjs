// A Node service on the real, unchanged @sentry/node with its defaults (span streaming on):
// a request span with a database child, a slow request whose child the SDK sends 5 s before
// the request itself (it flushes a trace's spans 5 s after the first ended), a captured error
// and message, user feedback.
// Usage: node node_app.mjs <dsn>; prints {"trace_id": …} when everything is flushed.
import * as Sentry from "@sentry/node";

const dsn = process.argv[2];
Sentry.init({ dsn, tracesSampleRate: 1.0, release: "shop-api@3.2", environment: "e2e" });

let traceId;
await Sentry.startSpan({ name: "GET /invoices/:id", op: "http.server" }, async (span) => {
  traceId = span.spanContext().traceId;
  await Sentry.startSpan({ name: "SELECT * FROM invoice WHERE id = 42", op: "db" }, async () => {
    await new Promise((resolve) => setTimeout(resolve, 30));
  });
  await new Promise((resolve) => setTimeout(resolve, 20));
});
await Sentry.startSpan({ name: "POST /exports", op: "http.server" }, async () => {
  await Sentry.startSpan({ name: "render invoice pdf", op: "function" }, async () => {
    await new Promise((resolve) => setTimeout(resolve, 50));
  });
  await new Promise((resolve) => setTimeout(resolve, 6500));
});
Sentry.captureException(new Error("invoice 42 could not be rendered"));
Sentry.captureMessage("node hello");
Sentry.captureFeedback({ message: "The invoice page is blank", name: "Ada", email: "ada@example.com" });
await Sentry.flush(10000);
console.log(JSON.stringify({ trace_id: traceId }));
