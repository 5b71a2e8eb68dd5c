"""A bulk send as teams write it: invoice e-mails over SMTP, one trace row per e-mail,
reported to Vigie with vigie_client. Used by test_jobs.py, run as its own process so the test
can kill it.

    python3 bulk_send.py DSN SMTP_PORT JOB_ID COUNT [--stall-after S] [--delay S]
"""

import argparse
import smtplib
import sys
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients" / "python"))
from vigie_client import Job  # noqa: E402


def recipient(i):
    # Every 50th customer has a dead mailbox: the SMTP server refuses it.
    return f"bounce{i}@example.com" if i % 50 == 13 else f"customer{i}@example.com"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dsn")
    p.add_argument("smtp_port", type=int)
    p.add_argument("job_id")
    p.add_argument("count", type=int)
    p.add_argument("--stall-after", type=float, default=60)
    p.add_argument("--delay", type=float, default=0.0)
    args = p.parse_args()

    job = Job.start(args.dsn, id=args.job_id, name="Send invoices", total=args.count, kind="email",
                    application="invoices", flow="monthly", launched_by="42",
                    stall_after=args.stall_after, heartbeat=min(15, args.stall_after / 3))
    print(job.id, flush=True)
    smtp = None
    with job:
        for i in range(1, args.count + 1):
            msg = EmailMessage()
            msg["From"] = "billing@shop.example.com"
            msg["To"] = recipient(i)
            msg["Subject"] = f"Invoice INV-{i:05d}"
            msg.set_content(f"Please find invoice INV-{i:05d} attached.")
            started = time.monotonic()
            error = None
            for attempt in range(20):
                try:
                    if smtp is None:
                        smtp = smtplib.SMTP("127.0.0.1", args.smtp_port, timeout=10)
                    smtp.send_message(msg)
                    error = None
                    break
                except smtplib.SMTPRecipientsRefused as e:
                    code, text = next(iter(e.recipients.values()))
                    error = f"{code} {text.decode()}"
                    break
                except smtplib.SMTPDataError as e:
                    if e.smtp_code == 421:  # throttled, and the server hung up: reconnect later
                        error = f"{e.smtp_code} {e.smtp_error.decode()}"
                        smtp = None
                        time.sleep(0.2)
                        continue
                    error = f"{e.smtp_code} {e.smtp_error.decode()}"
                    break
            duration = time.monotonic() - started
            fields = dict(name=f"INV-{i:05d}", file=f"invoices/INV-{i:05d}.pdf", target=msg["To"],
                          duration=duration, id=f"INV-{i:05d}")
            if error:
                job.item_error(error=error, **fields)
            else:
                job.item_ok(**fields)
            if i % 50 == 0:
                job.progress(f"Email {i}/{args.count} sent (durée: {duration:.2f}s)")
            time.sleep(args.delay)


if __name__ == "__main__":
    main()
