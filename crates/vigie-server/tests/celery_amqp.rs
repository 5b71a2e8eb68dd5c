//! The RabbitMQ side of Celery against a real RabbitMQ (`VIGIE_TEST_AMQP_URL`): a real
//! worker's captured events, published on the `celeryev` exchange as Celery's AMQP transport
//! sends them (the JSON body itself, routing key `task.multi` …), become tasks, Jobs and
//! workers; queue lengths come from the broker; mistakes are named.

mod common;

use base64::Engine;
use common::eventually;
use std::time::Duration;
use vigie_server::celery::amqp::{AmqpUrl, Connection};

const EVENTS: &str = include_str!("../../vigie-protocol/tests/fixtures/celery/events.txt");

fn amqp() -> Option<String> {
    let url = std::env::var("VIGIE_TEST_AMQP_URL").ok();
    if url.is_none() {
        eprintln!("skipped: VIGIE_TEST_AMQP_URL is not set");
    }
    url
}

/// (routing key, JSON body) of each captured Redis message: what the AMQP transport carries.
fn bodies() -> Vec<(String, Vec<u8>)> {
    EVENTS
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let envelope: serde_json::Value = serde_json::from_str(l).unwrap();
            let key = envelope["properties"]["delivery_info"]["routing_key"]
                .as_str()
                .unwrap()
                .to_string();
            let body = base64::engine::general_purpose::STANDARD
                .decode(envelope["body"].as_str().unwrap())
                .unwrap();
            (key, body)
        })
        .collect()
}

#[tokio::test]
async fn events_on_the_celeryev_exchange_become_tasks_and_workers() {
    let Some(url) = amqp() else { return };
    let app = common::app_configured(Duration::from_secs(3600), |c| {
        c.celery.brokers = url.clone();
        c.celery.enable_events = true;
    })
    .await;
    let _consumer = vigie_server::celery::consumer::start(&app.state, &app.server.errors)
        .await
        .unwrap();
    let token = app.admin_token().await;
    let state = app.state.clone();
    eventually("the consumer connected", || {
        let brokers = state.brokers.list();
        async move {
            brokers
                .iter()
                .any(|b| b.connected && b.url.starts_with("amqp://guest@"))
        }
    })
    .await;

    let mut publisher = Connection::open(&AmqpUrl::parse(&url).unwrap())
        .await
        .unwrap();
    for (key, body) in bodies() {
        publisher
            .publish("celeryev", &key, &body, &[])
            .await
            .unwrap();
    }
    // Not JSON: counted and skipped, the consumer reads on.
    publisher
        .publish("celeryev", "task.multi", b"\x80\x04garbage", &[])
        .await
        .unwrap();
    publisher
        .publish("celeryev", "worker.heartbeat", br#"{"type": "worker-heartbeat", "hostname": "celery@late", "timestamp": 1795283700.0, "freq": 2.0}"#, &[])
        .await
        .unwrap();

    let (app, token) = (&app, token.as_str());
    eventually(
        "three tasks finished and the late worker seen",
        || async move {
            let tasks = app.api_get("/api/v1/celery/tasks", token).await.json();
            let workers = app.api_get("/api/v1/celery/workers", token).await.json();
            tasks.as_array().is_some_and(|t| {
                t.len() == 3
                    && t.iter()
                        .all(|t| t["state"] == "SUCCESS" || t["state"] == "FAILURE")
            }) && workers.to_string().contains("celery@late")
        },
    )
    .await;
    let failed = app
        .api_get("/api/v1/celery/tasks?state=FAILURE", token)
        .await
        .json();
    assert_eq!(failed[0]["exception"], "KeyError('BE')");
    let job = app
        .api_get(
            &format!("/api/v1/jobs/{}", failed[0]["uuid"].as_str().unwrap()),
            token,
        )
        .await
        .json();
    assert_eq!(
        (job["kind"].as_str(), job["status"].as_str()),
        (Some("celery"), Some("failed")),
        "{job}"
    );
    let metrics = app.get("/metrics", "").await.body;
    assert!(
        metrics.contains("vigie_celery_undecodable_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigie_celery_task_events_total{type=\"task-failed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigie_celery_task_runtime_seconds_count{task=\"tasks.add\"} 1"),
        "{metrics}"
    );

    // Queue lengths from the broker: the tasks' queue "celery" (declared by the app, maybe
    // not here) answers a count or nothing, never an error; the connection goes on after a
    // queue the broker does not have.
    let queues = app.api_get("/api/v1/celery/queues", token).await.json();
    assert_eq!(queues[0]["name"], "celery", "{queues}");
    let mut asker = Connection::open(&AmqpUrl::parse(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(
        asker
            .queue_length("vigie-test-no-such-queue")
            .await
            .unwrap(),
        None
    );
    let own = asker.consume_events().await.unwrap();
    assert_eq!(asker.queue_length(&own).await.unwrap(), Some(0));
}

#[tokio::test]
async fn mistakes_are_named() {
    let Some(url) = amqp() else { return };
    let good = AmqpUrl::parse(&url).unwrap();
    let wrong = AmqpUrl {
        password: "not the password".into(),
        ..good.clone()
    };
    let err = Connection::open(&wrong).await.err().expect("login refused");
    assert!(err.to_string().starts_with("amqp: "), "{err}");
    let vhost = AmqpUrl {
        vhost: "no-such-vhost".into(),
        ..good.clone()
    };
    let err = Connection::open(&vhost).await.err().expect("vhost refused");
    assert!(err.to_string().contains("no-such-vhost"), "{err}");
    let closed = AmqpUrl { port: 1, ..good };
    assert!(Connection::open(&closed).await.is_err());
}

/// A broadcast refused because no worker declared its exchange yet (Vigie started first) is
/// told to the caller, and the next one, once the exchange exists, is delivered: a refused
/// broadcast channel used to stay closed unnoticed, so later broadcasts vanished.
#[tokio::test]
async fn a_refused_broadcast_does_not_silence_the_next() {
    let Some(url) = amqp() else { return };
    let url = AmqpUrl::parse(&url).unwrap();
    let mut listener = Connection::open(&url).await.unwrap();
    listener.consume_events().await.unwrap();
    let mut publisher = Connection::open(&url).await.unwrap();

    let refused = publisher
        .publish("vigie-test-no-such-exchange", "", b"{}", &[])
        .await
        .expect_err("no such exchange");
    assert_eq!(refused.kind(), std::io::ErrorKind::NotFound, "{refused}");
    assert!(refused.to_string().contains("404"), "{refused}");

    let body = br#"{"type": "worker-heartbeat", "hostname": "celery@after-refusal"}"#;
    publisher
        .publish("celeryev", "worker.heartbeat", body, &[])
        .await
        .unwrap();
    let delivery = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let d = listener.next_delivery().await.unwrap();
            if d.body == body {
                return d;
            }
        }
    })
    .await
    .expect("the broadcast after the refusal arrived");
    assert_eq!(delivery.routing_key, "worker.heartbeat");
}
