//! Inline SVG icons (stroke icons drawn for Vigie), trusted constants rendered unescaped.

pub const LOGO: &str = r##"<svg viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="7" fill="#2563eb"/><path d="M16 6 L25 24 H7 Z" fill="none" stroke="#fff" stroke-width="2.6" stroke-linejoin="round"/><circle cx="16" cy="18" r="2.6" fill="#fff"/></svg>"##;

macro_rules! icon {
    ($name:ident, $paths:literal) => {
        pub const $name: &str = concat!(
            r#"<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">"#,
            $paths,
            "</svg>"
        );
    };
}

icon!(
    DASHBOARD,
    r#"<rect x="3" y="3" width="7" height="9" rx="1"/><rect x="14" y="3" width="7" height="5" rx="1"/><rect x="14" y="12" width="7" height="9" rx="1"/><rect x="3" y="16" width="7" height="5" rx="1"/>"#
);
icon!(
    JOBS,
    r#"<path d="M4 6h16M4 12h10M4 18h6"/><circle cx="19" cy="16" r="3"/>"#
);
icon!(
    LOGS,
    r#"<path d="M5 4h14v16H5z"/><path d="M9 8h6M9 12h6M9 16h4"/>"#
);
icon!(
    RELEASES,
    r#"<path d="M3 12l9-9h8v8l-9 9z"/><circle cx="16" cy="8" r="1.5"/>"#
);
icon!(
    ISSUES,
    r#"<path d="M12 3 2 21h20L12 3z"/><path d="M12 10v5M12 18h.01"/>"#
);
icon!(
    PERFORMANCE,
    r#"<path d="M3 20h18"/><path d="M5 16l4-6 4 3 6-8"/>"#
);
icon!(
    METRICS,
    r#"<path d="M3 3v18h18"/><path d="M7 14l3-3 3 2 5-6"/><circle cx="7" cy="14" r="1"/><circle cx="18" cy="7" r="1"/>"#
);
icon!(
    CELERY,
    r#"<path d="M12 3v18"/><path d="M12 8c-3 0-5-2-5-5M12 8c3 0 5-2 5-5M12 14c-3 0-6-2-6-5M12 14c3 0 6-2 6-5M12 20c-3 0-7-2-7-6M12 20c3 0 7-2 7-6"/>"#
);
icon!(
    MONITORS,
    r#"<circle cx="12" cy="13" r="8"/><path d="M12 9v4l2.5 2.5M9 2h6"/>"#
);
icon!(
    ALERTS,
    r#"<path d="M18 8a6 6 0 1 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/><path d="M13.7 21a2 2 0 0 1-3.4 0"/>"#
);
icon!(
    SYSTEM,
    r#"<rect x="3" y="4" width="18" height="6" rx="1"/><rect x="3" y="14" width="18" height="6" rx="1"/><path d="M7 7h.01M7 17h.01"/>"#
);
icon!(
    SETTINGS,
    r#"<circle cx="12" cy="12" r="3"/><path d="M19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1z"/>"#
);
icon!(
    KEY,
    r#"<circle cx="7.5" cy="15.5" r="4.5"/><path d="M10.7 12.3 21 2M16 7l3 3M14 9l2 2"/>"#
);
