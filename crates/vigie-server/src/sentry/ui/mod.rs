//! The Issues pages (the list, one issue with its events, user feedback) and the Performance
//! pages (endpoints and tasks, one transaction with its samples and waterfall).

pub mod event_view;
pub mod issues;
pub mod performance;
