//! Celery: Vigie reads the events Celery workers and clients publish on the broker, and keeps
//! every task and worker.
//!
//! - [`redis`] speaks to a Redis broker: the `celeryev` channels, the result backend's task
//!   states, one-off commands.
//! - [`consumer`] reads each configured broker (reconnecting with backoff) and stores what it
//!   reads in batches: messages are decoded by `vigie_protocol::celery`, states merged by
//!   `vigie_core::celery`, rows written by `vigie_store::celery`.
//!   Each task is also a Job of kind `celery`, moved in the same transaction
//!   (`vigie_core::celery::Task::job_updates`).
//! - [`queues`] reads how many messages wait in each queue.
//! - [`api`] answers for tasks and workers, in Vigie's API and in Flower's.

pub mod api;
pub mod consumer;
pub mod queues;
pub mod redis;

pub use consumer::{BrokerStatus, Brokers};
