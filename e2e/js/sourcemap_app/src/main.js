// The page's entry point: @sentry/browser (real, unchanged) reports what the button throws.
// The DSN comes from the page's address (?dsn=…), the release from the build.
import * as Sentry from "@sentry/browser";
import { payNow } from "./checkout.js";

const dsn = new URLSearchParams(location.search).get("dsn");
Sentry.init({ dsn, release: "shop@1.0.0", sendClientReports: false });

document.getElementById("pay").addEventListener("click", function onPayClicked() {
  payNow({ id: "b-42", ready: false, total: 12 });
});

window.vigieSent = (eventId) => Sentry.flush(5000).then(() => eventId);
