//! Celery brokers. [`redis`] speaks to a Redis broker: subscribing to the `celeryev` channels
//! and the result backend's task states, and one-off commands such as queue lengths. The
//! events it reads are decoded by `vigie_protocol::celery` and judged by `vigie_core::celery`.

pub mod redis;
