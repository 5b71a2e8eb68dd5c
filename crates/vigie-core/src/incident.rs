//! Incident reports: one timeline over everything that happened in a time window (log lines,
//! error events, job changes, slow or failed transactions, monitor runs), and the diagnosis
//! hints read from it.
//!
//! Each [`RULES`] entry knows the words a known cause leaves in logs — an SMTP server
//! throttling (`421 4.7.0`), nginx giving up on an upstream (`504`, `upstream timed out`), the
//! kernel's OOM killer, a full disk — and a hint is reported only with the lines that prove
//! it (its evidence), so a person can check it in seconds. The rules read text only, so they
//! work the same on imported files as on live logs.

use crate::numbers::count;
use crate::Timestamp;
use regex::Regex;
use serde::Serialize;
use std::fmt::Write;

/// What a timeline entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Log,
    Error,
    Job,
    Transaction,
    Monitor,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Log => "log",
            EntryKind::Error => "error",
            EntryKind::Job => "job",
            EntryKind::Transaction => "transaction",
            EntryKind::Monitor => "monitor",
        }
    }
}

/// `2025-01-10 22:15:03` in `zone`: how a report shows a time (its header names the zone).
pub fn clock(t: Timestamp, zone: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(t.millis()) {
        Ok(ts) => ts
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => t.to_rfc3339(),
    }
}

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    pub at: Timestamp,
    pub kind: EntryKind,
    /// Where it comes from: a log source, `sentry`, a job's name, a monitor's slug.
    pub source: String,
    /// `error`, `warning`, `info`… (jobs and monitors: `failed`, `stalled`, `missed`…).
    pub level: String,
    pub text: String,
    /// The page in Vigie that shows it, as a path (`/issues/7`).
    pub link: Option<String>,
}

/// A likely cause, with the entries that point to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hint {
    /// Stable id of the rule (`smtp_throttling`).
    pub rule: &'static str,
    pub title: &'static str,
    /// What it usually means and what to check.
    pub advice: &'static str,
    /// How many entries matched.
    pub count: usize,
    pub first: Timestamp,
    pub last: Timestamp,
    /// The first few matching entries (indices into the timeline).
    pub evidence: Vec<usize>,
}

impl Hint {
    /// "1 entry", "12 entries": how the report and its page say [`Hint::count`].
    pub fn entries(&self) -> String {
        count(self.count as i64, "entry", "entries")
    }
}

/// One diagnosis rule: a pattern over an entry's text (and, when given, a context the entry
/// must also mention), or a kind of entry.
pub struct Rule {
    pub id: &'static str,
    pub title: &'static str,
    pub advice: &'static str,
    pattern: &'static str,
    context: Option<&'static str>,
    kinds: &'static [EntryKind],
}

/// Entries of every kind: SMTP trouble shows in logs, errors, job messages and monitor output alike.
const EVERY_KIND: &[EntryKind] = &[
    EntryKind::Log,
    EntryKind::Error,
    EntryKind::Job,
    EntryKind::Monitor,
];

/// The known causes, most specific first.
pub const RULES: &[Rule] = &[
    Rule {
        id: "smtp_throttling",
        title: "The SMTP server throttled the sending",
        advice: "The mail server answered with temporary refusals (421/450/4.7.0, rate limits): \
                 the send went faster than the provider allows. Slow it down (a rate limit per \
                 minute, fewer connections) and retry the refused messages later.",
        pattern: r"\b421\b|\b45[0-2]\b|\b4\.7\.[0-9]\b|rate.?limit|too many (messages|connections|recipients|mails)|throttl",
        context: Some(
            r"smtp|mail|postfix|exim|sendmail|relay|recipient|\b4\.\d\.\d\b|status=deferred",
        ),
        kinds: EVERY_KIND,
    },
    Rule {
        id: "smtp_failure",
        title: "SMTP authentication or connection failed",
        advice: "The application could not log in to, or reach, the mail server. Check the \
                 SMTP host, port, TLS mode and credentials, and whether the provider blocked \
                 the account.",
        pattern: r"\b535\b|\b5\.7\.8\b|authentication (failed|unsuccessful)|SMTPAuthenticationError|SMTPConnectError|SMTPServerDisconnected",
        context: None,
        kinds: EVERY_KIND,
    },
    Rule {
        id: "gateway_timeout",
        title: "The web server gave up on the application (502/504)",
        advice: "nginx (or another proxy) got no answer in time from the application server: \
                 requests took longer than the proxy's timeout, or the workers were busy or \
                 gone. Look at the slow requests and at the workers at the same time.",
        pattern: r#"upstream timed out|upstream prematurely closed|no live upstreams|gateway time-?out|bad gateway|" 50[24] |\b50[24] (gateway|bad)"#,
        context: None,
        kinds: &[EntryKind::Log],
    },
    Rule {
        id: "worker_killed",
        title: "A worker process was killed",
        advice: "A worker died without finishing its work: the kernel's OOM killer, a SIGKILL, \
                 or gunicorn's worker timeout. What it was doing stopped mid-way (a job stalls \
                 at that moment). Check memory use and the worker timeout.",
        pattern: r"out of memory: kill|oom-kill|oom_reaper|killed process \d+|worker timeout|sigkill|signal 9\b|exit(ed)? (with )?(code|status) 137|\bkilled\b",
        context: None,
        kinds: &[EntryKind::Log, EntryKind::Error, EntryKind::Job],
    },
    Rule {
        id: "database_connection",
        title: "The database refused or lost connections",
        advice: "The application could not talk to its database: the server was down or \
                 restarting, out of connection slots, or a lock blocked it. Check the \
                 database's log and its connection limit.",
        pattern: r"could not connect to server|connection to server .* failed|too many clients|remaining connection slots|operationalerror|database is locked|lost connection to mysql|server closed the connection unexpectedly|connection refused.*(5432|3306)",
        context: None,
        kinds: &[EntryKind::Log, EntryKind::Error],
    },
    Rule {
        id: "disk_full",
        title: "A disk is full",
        advice: "Writes failed for lack of space. Free space (old logs, temporary files) and \
                 check what grew.",
        pattern: r"no space left on device|enospc|disk (is )?full|disk quota exceeded",
        context: None,
        kinds: &[EntryKind::Log, EntryKind::Error, EntryKind::Job],
    },
    Rule {
        id: "job_stopped",
        title: "A job stopped before its end",
        advice: "A job stalled (it stopped reporting) or failed in the window. Its last items \
                 and messages say how far it got; the hints above often say why.",
        pattern: r"^(stalled|failed)",
        context: None,
        kinds: &[EntryKind::Job],
    },
    Rule {
        id: "monitor_down",
        title: "A scheduled run failed or never came",
        advice: "A cron monitor's run failed, was missed or timed out in the window.",
        pattern: r"^(failed|missed|timed out)",
        context: None,
        kinds: &[EntryKind::Monitor],
    },
    Rule {
        id: "unhandled_exception",
        title: "Unhandled exceptions",
        advice: "The application raised errors it did not handle. The first one is often the \
                 cause, the rest consequences: open it for its stack trace.",
        pattern: r"traceback \(most recent call last\)|unhandled exception|uncaught exception",
        context: None,
        kinds: &[EntryKind::Log, EntryKind::Error],
    },
];

/// Evidence kept per hint.
const EVIDENCE: usize = 5;

fn compiled() -> &'static Vec<(Regex, Option<Regex>)> {
    static RULES_RE: std::sync::OnceLock<Vec<(Regex, Option<Regex>)>> = std::sync::OnceLock::new();
    RULES_RE.get_or_init(|| {
        RULES
            .iter()
            .map(|r| {
                let re = |p: &str| Regex::new(&format!("(?i){p}")).expect("a valid built-in rule");
                (re(r.pattern), r.context.map(re))
            })
            .collect()
    })
}

/// The hints `timeline` supports, in the order of [`RULES`]. Error events count as
/// unhandled exceptions whatever their text.
pub fn diagnose(timeline: &[Entry]) -> Vec<Hint> {
    let compiled = compiled();
    let mut hints = Vec::new();
    for (rule, (pattern, context)) in RULES.iter().zip(compiled) {
        let mut matched = Vec::new();
        for (i, entry) in timeline.iter().enumerate() {
            if !rule.kinds.contains(&entry.kind) {
                continue;
            }
            let text = match entry.kind {
                EntryKind::Job | EntryKind::Monitor => format!("{} {}", entry.level, entry.text),
                _ => entry.text.clone(),
            };
            let hit = (rule.id == "unhandled_exception" && entry.kind == EntryKind::Error)
                || (pattern.is_match(&text)
                    && context
                        .as_ref()
                        .is_none_or(|c| c.is_match(&text) || c.is_match(&entry.source)));
            if hit {
                matched.push(i);
            }
        }
        if let (Some(&first), Some(&last)) = (matched.first(), matched.last()) {
            hints.push(Hint {
                rule: rule.id,
                title: rule.title,
                advice: rule.advice,
                count: matched.len(),
                first: timeline[first].at,
                last: timeline[last].at,
                evidence: matched.into_iter().take(EVIDENCE).collect(),
            });
        }
    }
    hints
}

/// What a timeline holds, in words: "6 log lines, 0 error events, …".
pub fn tally(timeline: &[Entry]) -> String {
    let of = |k: EntryKind| timeline.iter().filter(|e| e.kind == k).count() as i64;
    format!(
        "{}, {}, {}, {}, {}.",
        count(of(EntryKind::Log), "log line", "log lines"),
        count(of(EntryKind::Error), "error event", "error events"),
        count(of(EntryKind::Job), "job change", "job changes"),
        count(
            of(EntryKind::Transaction),
            "slow or failed transaction",
            "slow or failed transactions"
        ),
        count(of(EntryKind::Monitor), "monitor run", "monitor runs")
    )
}

/// A report as plain text (the CLI's default) or Markdown (for a ticket or a post-mortem),
/// its times in `zone`.
pub fn render(
    (from, to): (Timestamp, Timestamp),
    timeline: &[Entry],
    hints: &[Hint],
    markdown: bool,
    zone: &jiff::tz::TimeZone,
) -> String {
    let mut out = String::new();
    let clock = |t: Timestamp| clock(t, zone);
    let (h1, h2) = if markdown { ("# ", "## ") } else { ("", "") };
    let _ = writeln!(
        out,
        "{h1}Incident report {} → {} ({})",
        clock(from),
        clock(to),
        zone.iana_name().unwrap_or("UTC")
    );
    let _ = writeln!(out, "\n{}", tally(timeline));
    let _ = writeln!(out, "\n{h2}Diagnosis\n");
    if hints.is_empty() {
        let _ = writeln!(out, "No known cause found in this window.");
    }
    for hint in hints {
        let bullet = if markdown { "- **" } else { "* " };
        let close = if markdown { "**" } else { "" };
        let _ = writeln!(
            out,
            "{bullet}{}{close} ({}, {} → {})\n  {}",
            hint.title,
            hint.entries(),
            clock(hint.first),
            clock(hint.last),
            hint.advice
        );
        for &i in &hint.evidence {
            let e = &timeline[i];
            let line = first_line(&e.text);
            if markdown {
                let _ = writeln!(out, "  - `{}` {} — {}", clock(e.at), e.source, line);
            } else {
                let _ = writeln!(out, "    {} {} {}", clock(e.at), e.source, line);
            }
        }
    }
    let _ = writeln!(out, "\n{h2}Timeline\n");
    for e in timeline {
        let line = first_line(&e.text);
        if markdown {
            let _ = writeln!(
                out,
                "- `{}` **{}** {} {}: {}",
                clock(e.at),
                e.kind.as_str(),
                e.level,
                e.source,
                line
            );
        } else {
            let _ = writeln!(
                out,
                "{} {:<7} {:<8} {}: {}",
                clock(e.at),
                e.kind.as_str(),
                e.level,
                e.source,
                line
            );
        }
    }
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(at: i64, source: &str, level: &str, text: &str) -> Entry {
        Entry {
            at: Timestamp(at),
            kind: EntryKind::Log,
            source: source.into(),
            level: level.into(),
            text: text.into(),
            link: None,
        }
    }

    /// The seed incident: a bulk send throttled by the mail provider at 22:2x, nginx 504s on
    /// the progress endpoint, and the job stalling.
    fn seed() -> Vec<Entry> {
        vec![
            log(1, "postfix", "info", "postfix/smtp[811]: 4F2A: to=<a@b.fr>, relay=smtp.example.com[1.2.3.4]:587, status=deferred (host said: 421 4.7.0 Too many messages, try again later)"),
            log(2, "worker", "error", "Erreur email 212/500: facture_CCT_212 - SMTPDataError (421, b'4.7.0 Too many messages')"),
            log(3, "nginx-error", "error", "2025/01/10 22:21:07 [error] 31#31: *9 upstream timed out (110: Connection timed out) while reading response header from upstream"),
            log(4, "nginx-access", "info", "10.0.0.1 - - [10/Jan/2025:22:21:07 +0100] \"GET /progress HTTP/1.1\" 504 167 \"-\" \"curl\""),
            log(5, "web", "info", "GET /invoices 200 in 12 ms"),
            Entry {
                at: Timestamp(6),
                kind: EntryKind::Job,
                source: "bulk invoices".into(),
                level: "stalled".into(),
                text: "212 of 500 processed, 3 failed; no news for 60 s".into(),
                link: Some("/jobs/j1".into()),
            },
            log(7, "kernel", "error", "Out of memory: Killed process 4242 (gunicorn) total-vm:1234kB"),
        ]
    }

    #[test]
    fn the_seed_incident_is_diagnosed_with_evidence() {
        let timeline = seed();
        let hints = diagnose(&timeline);
        let ids: Vec<&str> = hints.iter().map(|h| h.rule).collect();
        assert_eq!(
            ids,
            [
                "smtp_throttling",
                "gateway_timeout",
                "worker_killed",
                "job_stopped"
            ]
        );
        let smtp = &hints[0];
        assert_eq!((smtp.count, &smtp.evidence), (2, &vec![0, 1]));
        assert_eq!(
            hints[1].evidence,
            vec![2, 3],
            "the error log and the 504 access line"
        );
        assert_eq!(hints[3].evidence, vec![5]);
        // A 421 with nothing about mail is not SMTP throttling; a 200 is no gateway error.
        assert!(diagnose(&[log(1, "web", "info", "GET /items/421 200")]).is_empty());
    }

    #[test]
    fn other_causes() {
        let one = |text: &str| diagnose(&[log(1, "app", "error", text)])[0].rule;
        assert_eq!(
            one("smtplib.SMTPAuthenticationError: (535, b'5.7.8 Bad credentials')"),
            "smtp_failure"
        );
        assert_eq!(
            one("psycopg2.OperationalError: FATAL: sorry, too many clients already"),
            "database_connection"
        );
        assert_eq!(
            one("OSError: [Errno 28] No space left on device"),
            "disk_full"
        );
        assert_eq!(one("[CRITICAL] WORKER TIMEOUT (pid:12)"), "worker_killed");
        assert_eq!(
            one("Traceback (most recent call last):\n  File \"x.py\""),
            "unhandled_exception"
        );
        let error = Entry {
            kind: EntryKind::Error,
            ..log(1, "sentry", "error", "KeyError: 'BE'")
        };
        assert_eq!(diagnose(&[error])[0].rule, "unhandled_exception");
    }

    #[test]
    fn text_and_markdown() {
        let timeline = seed();
        let hints = diagnose(&timeline);
        let utc = jiff::tz::TimeZone::UTC;
        let text = render(
            (Timestamp(0), Timestamp(900_000)),
            &timeline,
            &hints,
            false,
            &utc,
        );
        assert!(text.starts_with("Incident report 1970-01-01 00:00:00 → 1970-01-01 00:15:00 (UTC)"));
        assert!(text.contains(
            "6 log lines, 0 error events, 1 job change, 0 slow or failed transactions, 0 monitor runs."
        ));
        assert!(text.contains("* The SMTP server throttled the sending (2 entries"));
        // One entry is one, not "1 entries".
        let lone = [log(
            1,
            "web",
            "error",
            "OSError: [Errno 28] No space left on device",
        )];
        let single = render(
            (Timestamp(0), Timestamp(900_000)),
            &lone,
            &diagnose(&lone),
            false,
            &utc,
        );
        assert!(single.contains("* A disk is full (1 entry, "), "{single}");
        assert!(single.contains("1 log line, 0 error events,"), "{single}");
        assert!(text.contains("postfix postfix/smtp[811]"));
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        let md = render(
            (Timestamp(0), Timestamp(900_000)),
            &timeline,
            &hints,
            true,
            &paris,
        );
        assert!(md.starts_with(
            "# Incident report 1970-01-01 01:00:00 → 1970-01-01 01:15:00 (Europe/Paris)"
        ));
        assert!(md.contains("## Diagnosis"));
        assert!(md.contains("- **The SMTP server throttled the sending**"));
        assert!(md.contains("**job** stalled bulk invoices: 212 of 500"));
    }
}
