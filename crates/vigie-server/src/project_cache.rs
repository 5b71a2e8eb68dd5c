//! What requests read of projects, kept in memory until a project changes: SDKs send one
//! request per event and pages name their project on every request, while projects change
//! a few times a year.
//!
//! ```text
//!   a project created, renamed, re-keyed or deleted
//!     here:               Hub::publish(Change::Projects) ──┐
//!     on another instance: change feed ─ Hub::forget_projects ─┤
//!                                                          ▼
//!                                      Hub::project_generation + 1
//!   Cache::fresh ── entry of an older generation, or older than CACHE_TTL ─▶ read the store
//! ```
//!
//! A change made outside any server (`vigie project …` on the command line) shows within
//! [`CACHE_TTL`].

use crate::hub::Hub;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigie_core::Project;
use vigie_store::{Store, StoreError};

/// How long a cached value is trusted when no change was heard.
pub const CACHE_TTL: Duration = Duration::from_secs(10);

/// Values by key, each trusted for [`CACHE_TTL`] and until the hub says a project changed.
pub struct Cache<K, V> {
    hub: Hub,
    entries: Mutex<HashMap<K, Cached<V>>>,
}

struct Cached<V> {
    value: V,
    at: Instant,
    generation: u64,
}

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    pub fn new(hub: Hub) -> Self {
        Cache {
            hub,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Cached<V>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value kept for `key`; else the one `read` answers, then kept (`None`: nothing
    /// kept, so a project made a moment later is found).
    pub async fn read_through<E>(
        &self,
        key: K,
        read: impl std::future::Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<V>, E> {
        if let Some(value) = self.fresh(&key) {
            return Ok(Some(value));
        }
        let generation = self.generation();
        let value = read.await?;
        self.keep(key, value.as_ref(), generation);
        Ok(value)
    }

    /// The value kept for `key`, unless a project changed since or it is too old.
    fn fresh(&self, key: &K) -> Option<V> {
        let generation = self.generation();
        self.lock()
            .get(key)
            .filter(|c| c.generation == generation && c.at.elapsed() < CACHE_TTL)
            .map(|c| c.value.clone())
    }

    /// The hub's count of project changes, to read before the store (see [`Cache::keep`]).
    fn generation(&self) -> u64 {
        self.hub.project_generation()
    }

    /// Keeps `value` (forgets `key` when `None`), read from the store when the hub's count
    /// was `generation`: read before the store, so a change made meanwhile leaves this entry
    /// stale rather than wrong.
    fn keep(&self, key: K, value: Option<&V>, generation: u64) {
        match value {
            Some(v) => self.lock().insert(
                key,
                Cached {
                    value: v.clone(),
                    at: Instant::now(),
                    generation,
                },
            ),
            None => self.lock().remove(&key),
        };
    }
}

/// Every project, as [`Store::list_projects`] answers them.
pub struct ProjectList(Cache<(), Arc<[Project]>>);

impl ProjectList {
    pub fn new(hub: Hub) -> Self {
        ProjectList(Cache::new(hub))
    }

    pub async fn get(&self, store: &dyn Store) -> Result<Arc<[Project]>, StoreError> {
        let read = async { store.list_projects().await.map(|list| Some(list.into())) };
        Ok(self.0.read_through((), read).await?.unwrap_or_default())
    }

    /// The list read again now, and kept: for a project named that the cached list lacks
    /// (made a moment ago outside this server, `vigie project create`).
    pub async fn reread(&self, store: &dyn Store) -> Result<Arc<[Project]>, StoreError> {
        self.0.keep((), None, self.0.generation());
        self.get(store).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_change_makes_every_entry_stale_and_a_change_during_a_read_too() {
        let (hub, _shutdown) = Hub::new();
        let cache: Cache<u8, &str> = Cache::new(hub.clone());
        let before = cache.generation();
        cache.keep(1, Some(&"one"), before);
        assert_eq!(cache.fresh(&1), Some("one"));

        hub.publish(crate::hub::Change::Projects);
        assert_eq!(cache.fresh(&1), None, "changed here");

        // Read from the store before a change from another instance was heard.
        let read_at = cache.generation();
        hub.forget_projects();
        cache.keep(1, Some(&"one, renamed"), read_at);
        assert_eq!(cache.fresh(&1), None, "kept stale, not served");

        cache.keep(1, Some(&"two"), cache.generation());
        assert_eq!(cache.fresh(&1), Some("two"));
        cache.keep(1, None, cache.generation());
        assert_eq!(cache.fresh(&1), None, "forgotten");
    }
}
