// A page on the real, unchanged @sentry/browser with its defaults (span streaming on), bundled
// by esbuild for e2e/test_sentry_js.py: the page load is traced, a message and an error are
// captured, feedback is sent by code and the feedback widget is on the page for a person to
// use. The DSN comes from the page's ?dsn=.
import * as Sentry from "@sentry/browser";

const dsn = new URLSearchParams(location.search).get("dsn");
Sentry.init({
  dsn,
  release: "shop-web@1.4",
  environment: "e2e",
  tracesSampleRate: 1.0,
  integrations: [Sentry.browserTracingIntegration(), Sentry.feedbackIntegration({ autoInject: true })],
});

window.vigieFlush = () => Sentry.flush(10000);

window.vigieDone = (async () => {
  Sentry.captureMessage("browser hello");
  Sentry.captureException(new Error("checkout button broke"));
  Sentry.captureFeedback({ message: "Checkout does nothing", name: "Grace", email: "grace@example.com" });
  // The page-load span ends once the page is idle; then the SDK sends its spans.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  await Sentry.flush(10000);
  return "sent";
})();
