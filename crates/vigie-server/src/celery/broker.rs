//! The brokers Vigie reads Celery events from, as configured: Redis or RabbitMQ, and the
//! names Celery uses on each.
//!
//! On Redis, kombu publishes events on `<global_keyprefix><fanout_prefix>celeryev/<routing
//! key>` (the fanout prefix is `/<db>.` unless the app changed it), broadcasts on
//! `…celery.pidbox`, keeps queues as lists named `<global_keyprefix><queue>`, and the result
//! backend publishes task states on `celery-task-meta-<id>`. `[celery] key_prefix` and
//! `fanout_prefix` follow an app that sets those transport options.

use super::amqp::AmqpUrl;
use super::redis::RedisUrl;

/// A configured broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Broker {
    Redis(RedisBroker),
    Amqp(AmqpUrl),
}

/// A Redis broker and the prefixes the app's kombu puts on names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisBroker {
    pub url: RedisUrl,
    /// kombu's `global_keyprefix` (empty by default).
    pub key_prefix: String,
    /// kombu's `fanout_prefix` with `{db}` replaced (`/0.` by default; empty when the app
    /// turned it off).
    pub fanout_prefix: String,
    /// The database the app's result backend writes task states in (the broker's unless
    /// `[celery] result_backend` names another on the same server).
    pub backend: RedisUrl,
}

impl Broker {
    /// Reads a broker URL; `fanout_prefix` may hold `{db}`. The reason when it is not one
    /// Vigie reads.
    pub fn parse(text: &str, key_prefix: &str, fanout_prefix: &str) -> Result<Broker, String> {
        let scheme = text.split("://").next().unwrap_or_default();
        match scheme {
            "redis" => {
                let url = RedisUrl::parse(text)?;
                Ok(Broker::Redis(RedisBroker {
                    fanout_prefix: fanout_prefix.replace("{db}", &url.db.to_string()),
                    key_prefix: key_prefix.to_string(),
                    backend: url.clone(),
                    url,
                }))
            }
            "amqp" | "pyamqp" => Ok(Broker::Amqp(AmqpUrl::parse(text)?)),
            "rediss" | "amqps" => Err(format!(
                "\"{text}\": TLS brokers ({scheme}://) are not read yet; use redis:// or amqp:// \
                 on a trusted network"
            )),
            _ => Err(format!(
                "\"{text}\": Vigie reads redis:// and amqp:// brokers (Celery's broker_url)"
            )),
        }
    }

    /// The URL without its password, for logs and the System page.
    pub fn describe(&self) -> String {
        match self {
            Broker::Redis(r) => r.url.describe(),
            Broker::Amqp(a) => a.describe(),
        }
    }
}

impl RedisBroker {
    /// The pattern of Celery's event channels.
    pub fn events_pattern(&self) -> String {
        format!("{}{}celeryev/*", self.key_prefix, self.fanout_prefix)
    }

    /// The pattern of the result backend's task states.
    pub fn meta_pattern(&self) -> String {
        format!("{}celery-task-meta-*", self.key_prefix)
    }

    /// Where broadcasts to every worker go.
    pub fn pidbox_channel(&self) -> String {
        format!("{}{}celery.pidbox", self.key_prefix, self.fanout_prefix)
    }

    /// The key of a list or value the app names `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.key_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_app_s_prefixes() {
        let Broker::Redis(plain) = Broker::parse("redis://h/5", "", "/{db}.").unwrap() else {
            panic!("a redis broker")
        };
        assert_eq!(plain.events_pattern(), "/5.celeryev/*");
        assert_eq!(plain.pidbox_channel(), "/5.celery.pidbox");
        assert_eq!(
            (plain.meta_pattern().as_str(), plain.key("mail").as_str()),
            ("celery-task-meta-*", "mail")
        );
        let Broker::Redis(prefixed) = Broker::parse("redis://h/0", "shop:", "").unwrap() else {
            panic!("a redis broker")
        };
        assert_eq!(prefixed.events_pattern(), "shop:celeryev/*");
        assert_eq!(prefixed.key("mail"), "shop:mail");
        assert_eq!(prefixed.meta_pattern(), "shop:celery-task-meta-*");
    }

    #[test]
    fn schemes() {
        assert!(matches!(
            Broker::parse("amqp://guest:guest@localhost//", "", ""),
            Ok(Broker::Amqp(_))
        ));
        assert!(Broker::parse("rediss://h", "", "")
            .unwrap_err()
            .contains("TLS"));
        assert!(Broker::parse("sqs://", "", "")
            .unwrap_err()
            .contains("redis:// and amqp://"));
    }
}
