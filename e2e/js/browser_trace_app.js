// The shop's checkout on the real @sentry/browser, bundled by esbuild for
// e2e/test_browser_trace.py: with its defaults plus `propagateTraceparent`, so the API it
// fetches (on the OpenTelemetry Node SDK) continues the browser's trace. It loads invoice 42
// and tries invoice 13, which is locked; `window.vigieDone` resolves to the trace id once the
// SDK has sent its spans. The DSN comes from the page's ?dsn=.
import * as Sentry from "@sentry/browser";

const dsn = new URLSearchParams(location.search).get("dsn");
Sentry.init({
  dsn,
  release: "shop-web@1.5",
  environment: "e2e",
  tracesSampleRate: 1.0,
  propagateTraceparent: true,
  integrations: [Sentry.browserTracingIntegration()],
});

window.vigieDone = (async () => {
  const traceId = await Sentry.startSpan({ name: "checkout", op: "ui.action" }, async (span) => {
    await fetch("/api/invoices/42").then((r) => r.json());
    await fetch("/api/invoices/13");
    return span.spanContext().traceId;
  });
  // The page-load span ends once the page is idle; then the SDK sends its spans.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  await Sentry.flush(10000);
  return traceId;
})();
