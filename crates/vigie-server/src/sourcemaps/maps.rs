//! The maps an event needs, fetched before it is processed, from a cache of parsed maps.
//!
//! ```text
//!   Sentry ingest ─ Resolver::for_body(project, body)
//!     the project holds no bundle (asked at most every 10 s) ─▶ nothing to do
//!     else each event item ─ symbolicate::wanted ─▶ debug ids, frame URLs, release, dist
//!       debug ids ─ cache, else store.files_by_debug_id ─▶ map + minified file ─ parsed
//!       URLs (in the release) ─ cache, else store.files_by_url: the minified file there ─▶
//!         the map its `sourcemap` header names (or URL + ".map") ─ parsed
//!   ─▶ Fetched: what process::error_event reads through symbolicate::SourceMaps
//!
//!   an event read back (issue page, API) ─ Resolver::resolve_late
//!     frames still raw (it came before its maps) ─▶ the same fetch ─ symbolicate ─▶
//!       the caller stores the resolved body back: resolved once, read many times
//! ```
//!
//! Parsing a map (tens of milliseconds for megabytes) happens off the runtime, once: parsed
//! maps stay in memory up to [`CACHE_BUDGET`] (least recently used go first). A bundle never
//! changes once stored, so a cached map is never stale; a deleted bundle's maps stay usable
//! until they age out of the cache, which resolves a few more frames, never wrong ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigie_core::ProjectId;
use vigie_protocol::sentry::envelope::{self, ItemType};
use vigie_protocol::sentry::symbolicate::{
    symbolicate, wanted, Outcome, SourceMapFile, SourceMaps, Wanted,
};
use vigie_store::artifacts::ArtifactFile;
use vigie_store::{Store, StoreError};

/// Memory the parsed maps may take (by [`SourceMapFile::weight`]).
pub const CACHE_BUDGET: usize = 256 << 20;
/// How long "this project has no bundle" is trusted (an upload on this instance clears it
/// at once; one on another instance shows within this delay).
const EMPTY_TTL: Duration = Duration::from_secs(10);

/// Parsed maps, shared by every request.
#[derive(Clone, Default)]
pub struct Resolver {
    inner: Arc<Mutex<Cache>>,
}

#[derive(Default)]
struct Cache {
    maps: HashMap<(ProjectId, String), Entry>,
    weight: usize,
    clock: u64,
    /// Projects seen without bundles, and when.
    empty: HashMap<ProjectId, Instant>,
}

struct Entry {
    map: Arc<SourceMapFile>,
    used: u64,
}

/// The maps fetched for one request.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Whether the request's events want maps from a project that has some: then their
    /// frames are looked up (and counted, resolved or not) even when none was found.
    pub wanted: bool,
    by_id: HashMap<String, Arc<SourceMapFile>>,
    by_url: HashMap<String, Arc<SourceMapFile>>,
}

impl SourceMaps for Fetched {
    fn by_debug_id(&self, debug_id: &str) -> Option<&SourceMapFile> {
        self.by_id.get(debug_id).map(Arc::as_ref)
    }
    fn by_url(&self, abs_path: &str) -> Option<&SourceMapFile> {
        self.by_url.get(abs_path).map(Arc::as_ref)
    }
}

/// A frame's URL as bundles name files: `~/` and the path (no scheme, host, query or
/// fragment), as Sentry's `~/` matches any host.
pub fn tilde_url(abs_path: &str) -> Option<String> {
    let path = match abs_path.split_once("://") {
        Some((_, rest)) => &rest[rest.find('/')?..],
        None if abs_path.starts_with("~/") => &abs_path[1..],
        None if abs_path.starts_with('/') => abs_path,
        None => return None,
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    Some(format!("~{path}"))
}

/// `reference` (a minified file's `sourcemap` header) read from the file at `url`.
fn joined(url: &str, reference: &str) -> Option<String> {
    if reference.contains("://") {
        return tilde_url(reference);
    }
    if let Some(path) = reference.strip_prefix('/') {
        return Some(format!("~/{path}"));
    }
    let dir = &url[..url.rfind('/')? + 1];
    let mut parts: Vec<&str> = dir.trim_end_matches('/').split('/').collect();
    for part in reference.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                if parts.len() > 1 {
                    parts.pop();
                }
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

impl Resolver {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A bundle was stored for `project`: its events may need maps from now on.
    pub fn bundle_stored(&self, project: ProjectId) {
        self.lock().empty.remove(&project);
    }

    /// The maps the events of a Sentry request body need (an envelope, or a `/store/` body).
    pub async fn for_body(
        &self,
        store: &dyn Store,
        project: ProjectId,
        body: &[u8],
        is_envelope: bool,
    ) -> Result<Fetched, StoreError> {
        if !self.may_have_bundles(store, project).await? {
            return Ok(Fetched::default());
        }
        let mut needed = Wanted::default();
        let mut read = |bytes: &[u8]| {
            if let Ok(event) = serde_json::from_slice::<serde_json::Value>(bytes) {
                needed.extend(wanted(&event));
            }
        };
        if is_envelope {
            if let Ok(parsed) = envelope::parse(body) {
                for item in parsed
                    .envelope
                    .items
                    .iter()
                    .filter(|i| i.kind == ItemType::Event)
                {
                    read(item.payload);
                }
            }
        } else {
            read(body);
        }
        if needed.is_empty() {
            return Ok(Fetched::default());
        }
        self.fetch(store, project, needed).await
    }

    /// Resolves the frames of a stored event that are still raw, because its maps were
    /// uploaded after it came. The caller stores the body back when frames were resolved.
    pub async fn resolve_late(
        &self,
        store: &dyn Store,
        project: ProjectId,
        event: &mut serde_json::Value,
    ) -> Result<Outcome, StoreError> {
        let needed = wanted(event);
        if needed.is_empty() || !self.may_have_bundles(store, project).await? {
            return Ok(Outcome::default());
        }
        let maps = self.fetch(store, project, needed).await?;
        Ok(symbolicate(event, &maps))
    }

    async fn may_have_bundles(
        &self,
        store: &dyn Store,
        project: ProjectId,
    ) -> Result<bool, StoreError> {
        let known_empty = self
            .lock()
            .empty
            .get(&project)
            .is_some_and(|at| at.elapsed() < EMPTY_TTL);
        if known_empty {
            return Ok(false);
        }
        let has = store.has_artifacts(project).await?;
        if !has {
            self.lock().empty.insert(project, Instant::now());
        }
        Ok(has)
    }

    fn cached(&self, project: ProjectId, key: &str) -> Option<Arc<SourceMapFile>> {
        let mut cache = self.lock();
        cache.clock += 1;
        let clock = cache.clock;
        let entry = cache.maps.get_mut(&(project, key.to_string()))?;
        entry.used = clock;
        Some(entry.map.clone())
    }

    fn keep(&self, project: ProjectId, key: String, map: Arc<SourceMapFile>) {
        let mut cache = self.lock();
        cache.clock += 1;
        let used = cache.clock;
        cache.weight += map.weight();
        if let Some(old) = cache.maps.insert((project, key), Entry { map, used }) {
            cache.weight -= old.map.weight();
        }
        while cache.weight > CACHE_BUDGET && cache.maps.len() > 1 {
            let oldest = cache
                .maps
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
                .expect("the cache is not empty");
            if let Some(gone) = cache.maps.remove(&oldest) {
                cache.weight -= gone.map.weight();
            }
        }
    }

    async fn fetch(
        &self,
        store: &dyn Store,
        project: ProjectId,
        needed: Wanted,
    ) -> Result<Fetched, StoreError> {
        let mut fetched = Fetched {
            wanted: true,
            ..Fetched::default()
        };
        // By debug id.
        let mut missing = Vec::new();
        for id in needed.debug_ids {
            match self.cached(project, &format!("id:{id}")) {
                Some(map) => {
                    fetched.by_id.insert(id, map);
                }
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            let files = store.files_by_debug_id(project, missing).await?;
            let mut by_id: HashMap<String, (Option<ArtifactFile>, Option<ArtifactFile>)> =
                HashMap::new();
            for file in files {
                let Some(id) = file.debug_id.clone() else {
                    continue;
                };
                let slot = by_id.entry(id).or_default();
                // Newest bundle first: the first of each kind wins.
                match file.kind.as_str() {
                    "source_map" if slot.0.is_none() => slot.0 = Some(file),
                    "minified_source" if slot.1.is_none() => slot.1 = Some(file),
                    _ => {}
                }
            }
            for (id, (map, minified)) in by_id {
                let Some(map) = map else { continue };
                if let Some(parsed) = parse(map, minified).await {
                    self.keep(project, format!("id:{id}"), parsed.clone());
                    fetched.by_id.insert(id, parsed);
                }
            }
        }
        // By URL, in the event's release.
        let Some(release) = needed.release else {
            return Ok(fetched);
        };
        let dist = needed.dist;
        let scope = format!("url:{release}\u{0}{}\u{0}", dist.as_deref().unwrap_or(""));
        let mut missing = HashMap::new();
        for url in needed.urls {
            let Some(tilde) = tilde_url(&url) else {
                continue;
            };
            match self.cached(project, &format!("{scope}{tilde}")) {
                Some(map) => {
                    fetched.by_url.insert(url, map);
                }
                None => {
                    missing.insert(tilde, url);
                }
            }
        }
        if missing.is_empty() {
            return Ok(fetched);
        }
        let minified = store
            .files_by_url(
                project,
                release.clone(),
                dist.clone(),
                missing.keys().cloned().collect(),
            )
            .await?;
        // Each minified file's map, else the URL with ".map".
        let mut map_of: HashMap<String, String> = HashMap::new();
        for tilde in missing.keys() {
            let named = minified
                .iter()
                .find(|f| &f.url == tilde && f.kind == "minified_source")
                .and_then(|f| f.sourcemap.as_deref())
                .and_then(|r| joined(tilde, r));
            map_of.insert(
                tilde.clone(),
                named.unwrap_or_else(|| format!("{tilde}.map")),
            );
        }
        let maps = store
            .files_by_url(project, release, dist, map_of.values().cloned().collect())
            .await?;
        for (tilde, map_url) in map_of {
            let Some(map) = maps
                .iter()
                .find(|f| f.url == map_url && f.kind == "source_map")
            else {
                continue;
            };
            let source = minified.iter().find(|f| f.url == tilde).cloned();
            if let Some(parsed) = parse(map.clone(), source).await {
                self.keep(project, format!("{scope}{tilde}"), parsed.clone());
                if let Some(url) = missing.get(&tilde) {
                    fetched.by_url.insert(url.clone(), parsed);
                }
            }
        }
        Ok(fetched)
    }
}

/// Parses a map off the runtime; a map that cannot be read is logged and left out (its
/// frames stay as sent).
async fn parse(map: ArtifactFile, minified: Option<ArtifactFile>) -> Option<Arc<SourceMapFile>> {
    let url = map.url.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        SourceMapFile::parse(
            &map.data,
            minified.as_ref().map(|m| m.data.as_slice()),
            &map.url,
        )
    })
    .await;
    match parsed {
        Ok(Ok(file)) => Some(Arc::new(file)),
        Ok(Err(reason)) => {
            tracing::warn!(%url, %reason, "an uploaded source map cannot be read");
            None
        }
        Err(err) => {
            tracing::warn!(%url, %err, "parsing a source map failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_urls_are_matched_as_bundles_name_files() {
        assert_eq!(
            tilde_url("http://localhost:5173/assets/app-3f2a.js?v=2#x").as_deref(),
            Some("~/assets/app-3f2a.js")
        );
        assert_eq!(tilde_url("app:///main.js").as_deref(), Some("~/main.js"));
        assert_eq!(
            tilde_url("/static/app.js").as_deref(),
            Some("~/static/app.js")
        );
        assert_eq!(tilde_url("~/a.js").as_deref(), Some("~/a.js"));
        assert_eq!(tilde_url("<anonymous>"), None);
        assert_eq!(tilde_url("http://host"), None);
        assert_eq!(
            joined("~/assets/app.js", "app.js.map").as_deref(),
            Some("~/assets/app.js.map")
        );
        assert_eq!(
            joined("~/assets/js/app.js", "../maps/app.map").as_deref(),
            Some("~/assets/maps/app.map")
        );
        assert_eq!(
            joined("~/assets/app.js", "/maps/app.map").as_deref(),
            Some("~/maps/app.map")
        );
        assert_eq!(
            joined("~/assets/app.js", "https://cdn.example/m/app.map").as_deref(),
            Some("~/m/app.map")
        );
    }
}
