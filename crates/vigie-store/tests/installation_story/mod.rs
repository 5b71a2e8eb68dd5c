//! A starting server's installation, on every backend: made in one transaction on a fresh
//! database, found again unchanged on the next start, agreed on by instances starting at once.

use std::sync::Arc;
use vigie_core::{ProjectKey, Role};
use vigie_store::{Installation, Installed, NewUser, Store, StoreError};

fn installation(token: &str, base_url: &str, own: Option<&str>) -> Installation {
    Installation {
        first_project: ("default".into(), ProjectKey::generate()),
        own_project: own.map(|name| (name.to_string(), ProjectKey::generate())),
        setup_token: ("setup_token".into(), token.into()),
        settings: vec![("base_url".into(), base_url.into())],
    }
}

fn names(installed: &Installed) -> Vec<&str> {
    installed.projects.iter().map(|p| p.name.as_str()).collect()
}

/// `store` is fresh: no project, no user, nothing in `meta`.
pub async fn installation_story(store: Arc<dyn Store>) {
    // Two instances starting at the same moment: both answer, and there are never two
    // first projects.
    let (one, two) = (
        installation("t1", "http://a", Some("vigie")),
        installation("t2", "http://a", Some("vigie")),
    );
    let (a, b) = tokio::join!(
        store.prepare_installation(&one),
        store.prepare_installation(&two)
    );
    for outcome in [&a, &b] {
        assert!(
            matches!(outcome, Ok(_) | Err(StoreError::Conflict(_))),
            "{outcome:?}"
        );
    }
    assert!(a.is_ok() || b.is_ok());
    let first = store
        .prepare_installation(&installation("t3", "http://a", Some("vigie")))
        .await
        .unwrap();
    assert_eq!(names(&first), ["default", "vigie"]);
    let token = first.setup_token.clone().unwrap();
    assert!(token == "t1" || token == "t2", "{token}");
    assert_eq!(
        store.meta("base_url").await.unwrap().as_deref(),
        Some("http://a")
    );

    // The next start finds it all: the same projects and keys, the same setup token; a new
    // address replaces the one remembered.
    let again = store
        .prepare_installation(&installation("t4", "http://b", Some("vigie")))
        .await
        .unwrap();
    assert_eq!(again.projects, first.projects);
    assert_eq!(again.setup_token, Some(token));
    assert_eq!(
        store.meta("base_url").await.unwrap().as_deref(),
        Some("http://b")
    );

    // Once a user exists there is no setup token; a project with another name does not
    // stop Vigie's own project being made when the configuration names a new one.
    store
        .create_user(&NewUser {
            username: "ada".into(),
            password_hash: "x".into(),
            role: Role::Admin,
        })
        .await
        .unwrap();
    let later = store
        .prepare_installation(&installation("t5", "http://b", Some("watch")))
        .await
        .unwrap();
    assert_eq!(later.setup_token, None);
    assert_eq!(names(&later), ["default", "vigie", "watch"]);
    let without_own = store
        .prepare_installation(&installation("t6", "http://b", None))
        .await
        .unwrap();
    assert_eq!(without_own.projects, later.projects);
    store.close().await;
}
