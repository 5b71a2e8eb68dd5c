//! Releases and deploys, on every backend: declared once, finalized, deployed; figures read
//! from the issues' release tags.

use std::sync::Arc;
use vigie_core::{Project, Timestamp};
use vigie_store::releases::Deploy;
use vigie_store::{Store, StoreError};

pub async fn releases_story(store: &Arc<dyn Store>, project: &Project) {
    let p = project.id;
    let t = |ms: i64| Timestamp(1_790_000_000_000 + ms);
    let first = store
        .save_release(p, "shop@3.0.0", None, None, t(0))
        .await
        .unwrap();
    assert_eq!(
        (first.version.as_str(), first.released_at),
        ("shop@3.0.0", None)
    );
    // Declared again (a retried step): the same release, its URL and finalize time set.
    let again = store
        .save_release(
            p,
            "shop@3.0.0",
            Some("https://x/3".into()),
            Some(t(5)),
            t(9),
        )
        .await
        .unwrap();
    assert_eq!(again.created_at, t(0), "created once");
    assert_eq!(again.released_at, Some(t(5)));
    assert_eq!(again.url.as_deref(), Some("https://x/3"));
    let kept = store
        .save_release(p, "shop@3.0.0", None, None, t(10))
        .await
        .unwrap();
    assert_eq!(
        (kept.url.as_deref(), kept.released_at),
        (Some("https://x/3"), Some(t(5)))
    );
    store
        .save_release(p, "shop@3.1.0", None, None, t(20))
        .await
        .unwrap();

    let deploy = |env: &str, at: i64| Deploy {
        environment: env.into(),
        name: None,
        url: None,
        started_at: None,
        finished_at: t(at),
    };
    store
        .add_deploy(p, "shop@3.0.0", deploy("staging", 30))
        .await
        .unwrap();
    store
        .add_deploy(p, "shop@3.0.0", deploy("production", 40))
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_deploy(p, "shop@9", deploy("production", 50))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let releases = store.releases(p).await.unwrap();
    let versions: Vec<&str> = releases.iter().map(|r| r.version.as_str()).collect();
    assert_eq!(versions, ["shop@3.1.0", "shop@3.0.0"]);
    let envs: Vec<&str> = releases[1]
        .deploys
        .iter()
        .map(|d| d.environment.as_str())
        .collect();
    assert_eq!(envs, ["production", "staging"], "newest deploy first");
    assert!(store.release(p, "shop@9").await.unwrap().is_none());
    // Figures come from the project's issues (the error story stored some): any version
    // they name has a count, and the query runs on every backend.
    for f in store.release_figures(p).await.unwrap() {
        assert!(f.events >= 0 && f.new_issues >= 0, "{f:?}");
    }
}
