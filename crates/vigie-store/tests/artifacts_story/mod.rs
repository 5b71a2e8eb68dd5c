//! Artifact bundles (source maps), on every backend: chunks, a bundle stored once, lookups by
//! debug id and by release and URL, the per-project cap, deletion and retention.

use std::sync::Arc;
use vigie_core::{Project, ProjectKey, Timestamp};
use vigie_store::artifacts::{NewArtifactFile, NewBundle};
use vigie_store::{Store, StoreError};

fn file(kind: &str, url: &str, debug_id: Option<&str>, data: &[u8]) -> NewArtifactFile {
    NewArtifactFile {
        kind: kind.into(),
        url: url.into(),
        debug_id: debug_id.map(str::to_string),
        sourcemap: (kind == "minified_source")
            .then(|| format!("{}.map", url.rsplit('/').next().unwrap())),
        data: data.to_vec(),
    }
}

fn bundle(project: &Project, checksum: &str, release: &str, id: &str, size: usize) -> NewBundle {
    NewBundle {
        project: project.id,
        checksum: checksum.into(),
        release: Some(release.into()),
        dist: None,
        files: vec![
            file(
                "minified_source",
                "~/assets/app.js",
                Some(id),
                &vec![b'j'; size],
            ),
            file(
                "source_map",
                "~/assets/app.js.map",
                Some(id),
                br#"{"version":3}"#,
            ),
        ],
        chunks: vec![format!("{checksum}-chunk")],
    }
}

pub async fn artifacts_story(store: &Arc<dyn Store>, project: &Project) {
    let p = project.id;
    let now = Timestamp(1_790_000_000_000);
    assert!(!store.has_artifacts(p).await.unwrap());

    // Chunks: kept once, found missing until sent, read back in the order asked.
    let (a, b) = ("aa".repeat(20), "bb".repeat(20));
    assert_eq!(
        store
            .missing_chunks(vec![a.clone(), b.clone()])
            .await
            .unwrap(),
        [a.clone(), b.clone()]
    );
    store
        .put_chunks(vec![(a.clone(), b"first".to_vec())], now)
        .await
        .unwrap();
    store
        .put_chunks(
            vec![
                (a.clone(), b"again".to_vec()),
                (b.clone(), b"second".to_vec()),
            ],
            now,
        )
        .await
        .unwrap();
    assert!(store
        .missing_chunks(vec![a.clone(), b.clone()])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.read_chunks(vec![b.clone(), a.clone()]).await.unwrap(),
        [b"second".to_vec(), b"first".to_vec()]
    );
    assert!(matches!(
        store.read_chunks(vec!["cc".repeat(20)]).await,
        Err(StoreError::NotFound(_))
    ));

    // A bundle: stored once, its chunks dropped with it.
    let id1 = "b1a8e0c27f3d4e5a9c1b2d3e4f5a6b7c";
    let mut first = bundle(project, "c1", "shop@1", id1, 1_000);
    first.chunks = vec![a.clone()];
    let saved = store.save_bundle(first.clone(), 10_000, now).await.unwrap();
    assert_eq!(saved.evicted, 0);
    assert!(store.has_artifacts(p).await.unwrap());
    assert!(store.bundle_stored(p, "c1").await.unwrap());
    assert_eq!(store.missing_chunks(vec![a.clone()]).await.unwrap(), [a]);
    let again = store.save_bundle(first, 10_000, now).await.unwrap();
    assert_eq!(again.id, saved.id, "the same checksum is the same bundle");
    assert_eq!(store.artifact_bundles(p).await.unwrap().len(), 1);

    // Lookups: by debug id (both files), by release and URL (that release only).
    let found = store.files_by_debug_id(p, vec![id1.into()]).await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].kind, "minified_source");
    assert_eq!(found[0].data, vec![b'j'; 1_000], "inflated back");
    assert_eq!(found[0].sourcemap.as_deref(), Some("app.js.map"));
    assert_eq!(found[1].data, br#"{"version":3}"#);
    let by_url = |release: &str| {
        let store = store.clone();
        let release = release.to_string();
        async move {
            store
                .files_by_url(p, release, None, vec!["~/assets/app.js".into()])
                .await
                .unwrap()
        }
    };
    assert_eq!(by_url("shop@1").await.len(), 1);
    // A release's files, as older sentry-cli lists them: name, size, SHA-1 of the content.
    let listed = store.release_files(p, "shop@1".into(), 100).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].name, "~/assets/app.js");
    assert_eq!(listed[0].size, 1_000);
    assert_eq!(
        listed[0].sha1,
        sha1_smol::Sha1::from(vec![b'j'; 1_000])
            .digest()
            .to_string()
    );
    assert_eq!(listed[1].kind, "source_map");
    assert_eq!(
        store
            .release_files(p, "shop@1".into(), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .release_files(p, "shop@9".into(), 100)
        .await
        .unwrap()
        .is_empty());
    assert!(by_url("shop@2").await.is_empty());
    assert!(store
        .files_by_url(
            p,
            "shop@1".into(),
            Some("web".into()),
            vec!["~/assets/app.js".into()]
        )
        .await
        .unwrap()
        .is_empty());
    let other = store
        .create_project("artifacts-other", &ProjectKey::generate())
        .await
        .unwrap();
    assert!(store
        .files_by_debug_id(other.id, vec![id1.into()])
        .await
        .unwrap()
        .is_empty());

    // The cap: the oldest bundles go to make room; a bundle larger than the cap is refused.
    let id2 = "22222222222222222222222222222222";
    let second = store
        .save_bundle(bundle(project, "c2", "shop@2", id2, 5_000), 6_000, now)
        .await
        .unwrap();
    assert_eq!(second.evicted, 1);
    assert!(store
        .files_by_debug_id(p, vec![id1.into()])
        .await
        .unwrap()
        .is_empty());
    let too_big = store
        .save_bundle(bundle(project, "c3", "shop@3", id2, 7_000), 6_000, now)
        .await;
    assert!(
        matches!(too_big, Err(StoreError::Invalid { .. })),
        "{too_big:?}"
    );
    assert_eq!(store.artifact_bundles(p).await.unwrap().len(), 1);

    // Deleting: only the project's own bundle.
    assert!(!store
        .delete_artifact_bundle(other.id, second.id)
        .await
        .unwrap());
    assert!(store.delete_artifact_bundle(p, second.id).await.unwrap());
    assert!(!store.has_artifacts(p).await.unwrap());

    // Retention: chunks and bundles older than their limits.
    let later = Timestamp(now.millis() + 3_600_000);
    store
        .save_bundle(bundle(project, "c4", "shop@4", id2, 10), 6_000, now)
        .await
        .unwrap();
    store
        .put_chunks(vec![("dd".repeat(20), b"late".to_vec())], later)
        .await
        .unwrap();
    assert_eq!(store.prune_artifacts(later, now).await.unwrap(), (1, 0));
    assert_eq!(
        store
            .prune_artifacts(later, Timestamp(later.millis() + 1))
            .await
            .unwrap(),
        (0, 1)
    );
    assert!(!store.has_artifacts(p).await.unwrap());
    assert_eq!(
        store
            .missing_chunks(vec!["dd".repeat(20)])
            .await
            .unwrap()
            .len(),
        0
    );
}
