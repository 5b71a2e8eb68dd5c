//! A task message as Celery's clients send it (message protocol 2), for the tasks Vigie sends
//! itself: a failed task retried with its arguments, Flower's `apply` and `send-task`.
//!
//! ```text
//! Redis: LPUSH <queue> {"body": base64([args, kwargs, embed]), "headers": {"task", "id", …},
//!                       "properties": {"delivery_info": {"exchange": "", "routing_key": <queue>}, …}}
//! RabbitMQ: publish on the default exchange with routing key <queue>; the same headers as
//!           AMQP headers, the same body
//! ```
//!
//! The shapes are those `celery.app.amqp.as_task_v2` writes (checked against a message
//! captured from Celery 5.7 in the tests).

use base64::Engine;
use serde_json::{json, Map, Value};

/// A task to send.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskMessage {
    pub id: String,
    pub name: String,
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
    /// The queue it goes to (the routing key on the default exchange).
    pub queue: String,
    /// The task this one comes from (a retry names the failed task).
    pub parent_id: Option<String>,
    /// The first task of the tree; itself when `None`.
    pub root_id: Option<String>,
    /// Not before (RFC 3339), for a countdown or an ETA.
    pub eta: Option<String>,
    /// Who sent it, as Celery names clients (`vigie@host`).
    pub origin: String,
    /// How the arguments read for people (the `argsrepr` of events); their JSON when `None`.
    pub argsrepr: Option<String>,
    pub kwargsrepr: Option<String>,
}

impl TaskMessage {
    /// The message headers (`celery.app.amqp.as_task_v2`).
    pub fn headers(&self) -> Value {
        json!({
            "lang": "py",
            "task": self.name,
            "id": self.id,
            "shadow": null,
            "eta": self.eta,
            "expires": null,
            "group": null,
            "group_index": null,
            "retries": 0,
            "timelimit": [null, null],
            "root_id": self.root_id.as_deref().unwrap_or(&self.id),
            "parent_id": self.parent_id,
            "argsrepr": self.argsrepr.clone().unwrap_or_else(|| Value::from(self.args.clone()).to_string()),
            "kwargsrepr": self.kwargsrepr.clone().unwrap_or_else(|| Value::from(self.kwargs.clone()).to_string()),
            "origin": self.origin,
            "ignore_result": false,
            "replaced_task_nesting": 0,
            "stamped_headers": null,
            "stamps": {},
        })
    }

    /// The body: `[args, kwargs, {"callbacks", "errbacks", "chain", "chord"}]`.
    pub fn body(&self) -> Value {
        json!([
            self.args,
            self.kwargs,
            {"callbacks": null, "errbacks": null, "chain": null, "chord": null}
        ])
    }

    /// The message as the Redis transport keeps it in the queue's list.
    pub fn redis_envelope(&self, delivery_tag: &str) -> Vec<u8> {
        json!({
            "body": base64::engine::general_purpose::STANDARD.encode(self.body().to_string()),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": self.headers(),
            "properties": {
                "correlation_id": self.id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": self.queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": delivery_tag,
            },
        })
        .to_string()
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from Celery 5.7 (`add.apply_async((2, 3), queue='peekq')` on Redis).
    const CAPTURED: &str = r#"{"body": "W1syLCAzXSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "celery_app.add", "id": "18253c7a-0d54-4f50-a0a5-2cd74d44f186", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "18253c7a-0d54-4f50-a0a5-2cd74d44f186", "parent_id": null, "argsrepr": "(2, 3)", "kwargsrepr": "{}", "origin": "gen970@vm", "ignore_result": false, "replaced_task_nesting": 0, "stamped_headers": null, "stamps": {}}, "properties": {"correlation_id": "18253c7a-0d54-4f50-a0a5-2cd74d44f186", "reply_to": "734bb0d0-384d-3b37-a6a8-ee33cc669d4d", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "peekq"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "e0671df4-80a3-4fd3-a49f-a4313fbf5405"}}"#;

    #[test]
    fn a_message_is_shaped_as_celery_s_own() {
        let captured: Value = serde_json::from_str(CAPTURED).unwrap();
        let ours = TaskMessage {
            id: "18253c7a-0d54-4f50-a0a5-2cd74d44f186".into(),
            name: "celery_app.add".into(),
            args: vec![2.into(), 3.into()],
            kwargs: Map::new(),
            queue: "peekq".into(),
            parent_id: None,
            root_id: None,
            eta: None,
            origin: "gen970@vm".into(),
            argsrepr: Some("(2, 3)".into()),
            kwargsrepr: Some("{}".into()),
        };
        let ours: Value =
            serde_json::from_slice(&ours.redis_envelope("e0671df4-80a3-4fd3-a49f-a4313fbf5405"))
                .unwrap();
        assert_eq!(ours["headers"], captured["headers"]);
        assert_eq!(
            super::super::open_envelope(ours.to_string().as_bytes()).unwrap(),
            super::super::open_envelope(CAPTURED.as_bytes()).unwrap()
        );
        for key in ["content-type", "content-encoding"] {
            assert_eq!(ours[key], captured[key]);
        }
        let mut props = captured["properties"].clone();
        props["reply_to"] = "".into(); // no result consumer of Vigie's own
        assert_eq!(ours["properties"], props);
    }
}
