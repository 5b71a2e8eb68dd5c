//! The Redis side of Celery against a real Redis (`VIGIE_TEST_REDIS_URL`): a real worker's
//! captured event messages, published again, come back through `PSUBSCRIBE` and decode into
//! the same events; a wrong password and a closed port give clear errors.

use std::time::Duration;
use vigie_protocol::celery::{decode_message, decode_task_meta};
use vigie_server::celery::redis::{Connection, RedisUrl, Reply};

const EVENTS: &str = include_str!("../../vigie-protocol/tests/fixtures/celery/events.txt");
const META: &str = include_str!("../../vigie-protocol/tests/fixtures/celery/meta.txt");

fn redis() -> Option<RedisUrl> {
    let Ok(url) = std::env::var("VIGIE_TEST_REDIS_URL") else {
        eprintln!("skipped: VIGIE_TEST_REDIS_URL is not set");
        return None;
    };
    Some(RedisUrl::parse(&url).expect("VIGIE_TEST_REDIS_URL is a redis:// URL"))
}

/// (channel, payload) pairs as `redis-cli psubscribe` printed them.
fn captured(capture: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = capture.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[1].starts_with('{'))
        .map(|w| (w[0].to_string(), w[1].to_string()))
        .collect()
}

#[tokio::test]
async fn published_celery_messages_come_back_decoded() {
    let Some(mut url) = redis() else { return };
    // A database of its own, so a Celery app on the default one is not disturbed.
    url.db = 7;
    let prefix = format!("/{}.celeryev/", url.db);
    let mut subscriber = Connection::open(&url).await.unwrap();
    subscriber
        .psubscribe(&[format!("{prefix}*"), "celery-task-meta-*".to_string()])
        .await
        .unwrap();
    let mut publisher = Connection::open(&url).await.unwrap();
    let mut sent = 0;
    for (channel, payload) in captured(EVENTS).into_iter().chain(captured(META)) {
        let channel = channel.replace("/5.celeryev/", &prefix);
        let reply = publisher
            .command(&["PUBLISH".into(), channel, payload])
            .await
            .unwrap();
        assert!(matches!(reply, Reply::Integer(n) if n >= 1), "{reply:?}");
        sent += 1;
    }
    let (mut events, mut metas) = (Vec::new(), Vec::new());
    for _ in 0..sent {
        let message = tokio::time::timeout(Duration::from_secs(5), subscriber.next_message())
            .await
            .expect("a message within 5 s")
            .unwrap();
        if message.channel.starts_with("celery-task-meta-") {
            metas.push(decode_task_meta(&message.payload).unwrap());
        } else {
            assert!(message.channel.starts_with(&prefix), "{}", message.channel);
            events.extend(decode_message(&message.payload).unwrap());
        }
    }
    assert!(events.iter().any(|e| e.kind == "task-failed"));
    assert!(events.iter().any(|e| e.kind == "worker-heartbeat"));
    assert!(metas.iter().any(|m| m.progress == Some((1, Some(5)))));

    // One-off commands answer too (what queue lengths will use).
    let length = publisher
        .command(&["LLEN".into(), "vigie-test-empty-queue".into()])
        .await
        .unwrap();
    assert_eq!(length, Reply::Integer(0));
}

#[tokio::test]
async fn mistakes_are_named() {
    let Some(url) = redis() else { return };
    let wrong = RedisUrl {
        password: Some("not the password".into()),
        username: Some("nobody".into()),
        ..url.clone()
    };
    let err = Connection::open(&wrong).await.err().expect("AUTH refused");
    assert!(err.to_string().starts_with("redis: "), "{err}");
    let closed = RedisUrl { port: 1, ..url };
    assert!(Connection::open(&closed).await.is_err());
}
