// The page's entry point: @sentry/browser (real, unchanged) reports what the button throws.
// The DSN comes from the page's address (?dsn=…), with the signed-in shopper (?user=…, for
// crash-free users), the release from the build. Release health (sessions) is the SDK's
// default.
import * as Sentry from "@sentry/browser";
import { payNow } from "./checkout.js";

const params = new URLSearchParams(location.search);
const user = params.get("user");
Sentry.init({
  dsn: params.get("dsn"),
  release: "shop@1.0.0",
  sendClientReports: false,
  initialScope: user ? { user: { id: user } } : undefined,
});

document.getElementById("pay").addEventListener("click", function onPayClicked() {
  payNow({ id: "b-42", ready: false, total: 12 });
});

window.vigieSent = (eventId) => Sentry.flush(5000).then(() => eventId);
