//! The product's sections, as the sidebar lists them and the dashboard describes them.

use super::icons;

/// A part of Vigie with its own page: what it is for and what its empty state says.
pub struct Section {
    pub key: &'static str,
    pub title: &'static str,
    pub href: &'static str,
    pub icon: &'static str,
    pub summary: &'static str,
    pub empty: &'static str,
    pub points: &'static [&'static str],
}

pub const SECTIONS: &[Section] = &[
    Section {
        key: "jobs",
        title: "Jobs",
        href: "/jobs",
        icon: icons::JOBS,
        summary: "Bulk sends, imports, syncs and Celery tasks: live progress, one row per item, and a warning when one stops.",
        empty: "Jobs appear here when your workers report progress through the jobs API or the Python helper, or when Vigie listens to your Celery broker.",
        points: &[
            "a live progress bar, speed and ETA for every running job",
            "one trace row per item (the e-mail sent, its recipients, its error)",
            "jobs that stop reporting turn \"stalled\" within a minute",
        ],
    },
    Section {
        key: "logs",
        title: "Logs",
        href: "/logs",
        icon: icons::LOGS,
        summary: "Every log line from syslog, Python logging, OpenTelemetry and Loki shippers, searchable and live.",
        empty: "Logs appear here when an application, rsyslog or a log shipper sends them to Vigie, or when you import existing files with `vigie import`.",
        points: &[
            "search with words, levels, sources and time ranges",
            "a live tail in the browser and in the terminal",
            "the lines of one job or one trace, side by side",
        ],
    },
    Section {
        key: "issues",
        title: "Issues",
        href: "/issues",
        icon: icons::ISSUES,
        summary: "Errors from your unchanged Sentry SDKs, grouped into issues with stack traces and breadcrumbs.",
        empty: "Issues appear here when an application whose Sentry SDK uses this project's DSN reports an error. The DSN is on the dashboard.",
        points: &[
            "errors grouped by cause, with counts and affected users",
            "stack traces with local variables, breadcrumbs and request data",
            "regressions flagged when a resolved issue comes back",
        ],
    },
    Section {
        key: "performance",
        title: "Performance",
        href: "/performance",
        icon: icons::PERFORMANCE,
        summary: "Transactions from your Sentry SDKs: latency percentiles, throughput and Apdex per endpoint and task.",
        empty: "Performance data appears here when a Sentry SDK with `traces_sample_rate` above 0 sends transactions to this project.",
        points: &[
            "p50, p95 and p99 latency per endpoint and task",
            "slow spans in a waterfall",
        ],
    },
    Section {
        key: "releases",
        title: "Releases",
        href: "/releases",
        icon: icons::RELEASES,
        summary: "Each version you ship: its events and new issues, its crash-free sessions, its deploys.",
        empty: "Releases appear here when an SDK sends events or sessions with `release` set, or when `sentry-cli releases new` declares one.",
        points: &[
            "events and issues first seen in each release",
            "crash-free sessions from the SDKs' release health",
            "deploys per environment, from `sentry-cli deploys new`",
        ],
    },
    Section {
        key: "metrics",
        title: "Metrics",
        href: "/charts",
        icon: icons::METRICS,
        summary: "Counters, gauges and histograms from your OpenTelemetry meters, charted by attribute and watched by threshold alerts.",
        empty: "Metrics appear here when an application's OpenTelemetry metric exporter sends to this server's /v1/metrics with the project key.",
        points: &[
            "filter and group series by attribute, over 15 minutes to 30 days",
            "averages, rates and p95 of histograms per minute",
            "alerts when a figure passes a threshold",
        ],
    },
    Section {
        key: "celery",
        title: "Celery",
        href: "/celery",
        icon: icons::CELERY,
        summary: "Celery tasks and workers, read from the broker's events and kept: states, arguments, results, tracebacks, progress.",
        empty: "Tasks appear here when Vigie reads a Celery broker (`vigie serve --celery-broker redis://…`) and workers send events (`celery worker -E`).",
        points: &[
            "every task with its state, arguments, result or traceback",
            "workers online and offline, with their heartbeats",
        ],
    },
    Section {
        key: "monitors",
        title: "Monitors",
        href: "/monitors",
        icon: icons::MONITORS,
        summary: "Cron jobs and scheduled tasks that check in, and a warning when one is missed.",
        empty: "Monitors appear here when a scheduled job sends Sentry cron check-ins or calls its ping URL.",
        points: &[
            "each schedule with its last and next expected run",
            "missed and failed runs, as they happen",
        ],
    },
    Section {
        key: "alerts",
        title: "Alerts",
        href: "/alerts",
        icon: icons::ALERTS,
        summary: "Rules that tell you by e-mail, Slack, Discord or webhook when something fails or stops.",
        empty: "Alert rules are set here: a new issue, a failed or stalled job, a missed cron run, a log pattern.",
        points: &[
            "new issue, regression and error-rate rules",
            "job failed, job stalled and missed check-in rules",
            "an incident report that gathers the logs of a time window",
        ],
    },
];
