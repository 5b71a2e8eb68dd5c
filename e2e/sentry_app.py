"""A small shop application reporting to Vigie through the real, unchanged `sentry-sdk`.

Run as `python3 sentry_app.py SCENARIO DSN [COMPRESSION]`, one process per scenario (the SDK
is global state). It prints one JSON line describing what the SDK did, for the test to check:

- errors:  a nested exception with a local `password`, a chained exception, breadcrumbs,
           `set_user`, tags, release and environment, `capture_message` at every level, and a
           task transaction with spans;
- asgi:    a Starlette app served by a real uvicorn with the SDK's integrations, so
           transactions are named by route; one route raises;
- flood N: N errors in a row, to meet the project's quota; prints whether the SDK backed off.
"""

import json
import sys
import threading
import time
import urllib.error
import urllib.request

import sentry_sdk

SCENARIO, DSN = sys.argv[1], sys.argv[2]
COMPRESSION = sys.argv[3] if len(sys.argv) > 3 else "br"


def init(**extra):
    sentry_sdk.init(
        dsn=DSN,
        release="shop@1.4.2",
        environment="production",
        traces_sample_rate=1.0,
        _experiments={"transport_compression_algo": COMPRESSION},
        **extra,
    )


def compression():
    return sentry_sdk.get_client().transport._compression_algo


def render_invoice(invoice):
    password = "hunter2-smtp"  # a local the SDK captures: Vigie must scrub it
    rates = {"FR": 0.2}
    return invoice["amount"] * rates[invoice["country"]]


def send_invoices(invoices):
    total = 0
    for invoice in invoices:
        total += render_invoice(invoice)
    return total


def connect_smtp():
    try:
        raise ConnectionRefusedError("smtp.example.com:587 refused the connection")
    except ConnectionRefusedError as exc:
        raise RuntimeError("cannot send the invoice e-mails") from exc


def errors():
    init()
    sentry_sdk.set_user({"id": "42", "email": "claire@example.com", "username": "claire"})
    sentry_sdk.set_tag("customer", "acme")
    sentry_sdk.set_tag("job_id", "nightly-invoices-7")
    sentry_sdk.add_breadcrumb(category="smtp", message="connected to smtp.example.com", level="info")
    sentry_sdk.add_breadcrumb(category="db", message="loaded 500 invoices", data={"count": 500})
    try:
        send_invoices([{"amount": 100, "country": "FR"}, {"amount": 50, "country": "BE"}])
    except KeyError:
        sentry_sdk.capture_exception()
    try:
        connect_smtp()
    except RuntimeError:
        sentry_sdk.capture_exception()
    for level in ["debug", "info", "warning", "error", "fatal"]:
        sentry_sdk.capture_message(f"Erreur email 3/500: facture_CCT_003 - Quota exceeded ({level})", level=level)
    with sentry_sdk.start_transaction(op="task", name="send_invoices") as tx:
        with sentry_sdk.start_span(op="db", name="SELECT * FROM invoice WHERE batch = 7"):
            time.sleep(0.02)
        with sentry_sdk.start_span(op="smtp", name="send 500 e-mails"):
            time.sleep(0.05)
        tx.set_status("ok")
    sentry_sdk.flush(timeout=10)
    print(json.dumps({"compression": compression()}))


def asgi():
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    init()

    async def invoice(request):
        return JSONResponse({"id": request.path_params["id"], "status": "sent"})

    async def boom(request):
        raise ValueError("invoice template missing for customer acme")

    app = Starlette(routes=[Route("/invoices/{id}", invoice), Route("/boom", boom)])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    statuses = []
    for path in ["/invoices/1", "/invoices/2", "/invoices/3", "/boom"]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                statuses.append(r.status)
        except urllib.error.HTTPError as e:
            statuses.append(e.code)
    server.should_exit = True
    thread.join(timeout=10)
    sentry_sdk.flush(timeout=10)
    print(json.dumps({"statuses": statuses, "compression": compression()}))


def flood(n):
    init()
    for i in range(n):
        sentry_sdk.capture_message(f"quota probe {i}", level="error")
        sentry_sdk.flush(timeout=10)  # one request each, so the answer of each is seen
    transport = sentry_sdk.get_client().transport
    limited = sorted(str(k) for k in transport._disabled_until)
    print(json.dumps({"rate_limited": limited, "compression": compression()}))


if __name__ == "__main__":
    if SCENARIO == "errors":
        errors()
    elif SCENARIO == "asgi":
        asgi()
    elif SCENARIO == "flood":
        flood(int(sys.argv[4]) if len(sys.argv) > 4 else 6)
    else:
        sys.exit(f"unknown scenario {SCENARIO!r}")
