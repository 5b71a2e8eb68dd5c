"""Report background jobs to Vigie: live progress, one trace row per item, and a heartbeat so
Vigie notices when the job stops.

    from vigie_client import Job

    with Job.start("http://127.0.0.1:8610", "PROJECT_KEY", name="Send invoices", total=500,
                   kind="email", application="invoices", launched_by="1") as job:
        for invoice in invoices:
            try:
                send(invoice)
                job.item_ok(name=invoice.number, target=invoice.email, duration=0.4)
            except Exception as e:
                job.item_error(name=invoice.number, target=invoice.email, error=str(e))

Standard library only, Python 3.9+. Nothing here raises into your code because Vigie is slow
or down: calls only queue work for a background thread, which batches items (every 100 or
every second), retries with backoff, warns once, and keeps a bounded buffer meanwhile.
"""

from .job import Job, VigieError

__all__ = ["Job", "VigieError"]
__version__ = "0.1.0"
