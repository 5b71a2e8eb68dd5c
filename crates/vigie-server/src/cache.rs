//! What requests read of projects, API tokens and browser sessions, kept in memory until it
//! changes: SDKs send one request per event, scripts one API call after another, and pages
//! name their project and their session on every request, while projects, tokens and users
//! change a few times a year. (On PostgreSQL each of these reads is a round trip: a search of
//! the Logs page paid one for its session alone.)
//!
//! ```text
//!   a project created, renamed, re-keyed or deleted; a token revoked; a user changed or
//!   deleted, a password set, a logout
//!     here:                Hub::publish(Change::Projects | Tokens | Users) ──┐
//!     on another instance: the relay's word, or the change feed (projects) ──┤
//!                                                                            ▼
//!                                             Hub::generation(kind) + 1
//!   Cache::fresh ── entry of an older generation, or older than its TTL ─▶ read the store
//! ```
//!
//! A change made outside any server (`vigie project …`, `vigie token revoke`, `vigie user …`
//! on the command line) shows within the cache's TTL: [`CACHE_TTL`] for projects,
//! [`TOKEN_TTL`] for tokens and sessions.

use crate::hub::{Cached, Hub};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigie_core::{ApiToken, Project, Timestamp};
use vigie_store::{Session, Store, StoreError};

/// How long a cached project value is trusted when no change was heard.
pub const CACHE_TTL: Duration = Duration::from_secs(10);
/// How long a cached API token or session is trusted when no change was heard: a token
/// revoked, or a session ended (a user's password set, a user deleted), from the command line
/// is refused by every server within this (one ended through a server is refused at once
/// there, and within the relay's 0.2 s on the others).
pub const TOKEN_TTL: Duration = Duration::from_secs(1);

/// Entries a cache holds before it first sweeps out the stale ones (see [`Cache::keep`]).
const SWEEP_AT: usize = 1024;

/// Values by key, each trusted for its TTL and until the hub says its kind changed.
pub struct Cache<K, V> {
    hub: Hub,
    kind: Cached,
    ttl: Duration,
    entries: Mutex<Entries<K, V>>,
}

struct Entries<K, V> {
    by_key: HashMap<K, Entry<V>>,
    /// The size at which the next insert sweeps: twice what the last sweep left, so a
    /// sweep's cost is shared by as many inserts as it kept entries.
    sweep_at: usize,
}

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries {
            by_key: HashMap::new(),
            sweep_at: SWEEP_AT,
        }
    }
}

struct Entry<V> {
    value: V,
    at: Instant,
    generation: u64,
}

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    /// A cache of projects' values (trusted for [`CACHE_TTL`]).
    pub fn new(hub: Hub) -> Self {
        Cache::of(hub, Cached::Projects, CACHE_TTL)
    }

    /// A cache of `kind`, each value trusted for `ttl`.
    pub fn of(hub: Hub, kind: Cached, ttl: Duration) -> Self {
        Cache {
            hub,
            kind,
            ttl,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<K, V>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value kept for `key`; else the one `read` answers, then kept (`None`: nothing
    /// kept, so a project made a moment later is found). The key is copied only to keep it.
    pub async fn read_through<Q, E>(
        &self,
        key: &Q,
        read: impl std::future::Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<V>, E>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(value) = self.fresh(key) {
            return Ok(Some(value));
        }
        let generation = self.generation();
        let value = read.await?;
        self.keep(key.to_owned(), value.as_ref(), generation);
        Ok(value)
    }

    /// The value kept for `key`, unless its kind changed since or it is too old.
    fn fresh<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let generation = self.generation();
        self.lock()
            .by_key
            .get(key)
            .filter(|c| self.is_fresh(c, generation))
            .map(|c| c.value.clone())
    }

    fn is_fresh(&self, entry: &Entry<V>, generation: u64) -> bool {
        entry.generation == generation && entry.at.elapsed() < self.ttl
    }

    /// Changes the value kept for `key`, if any, in place (what this instance itself wrote
    /// of it), leaving its age as it is.
    fn amend<Q>(&self, key: &Q, change: impl FnOnce(&mut V))
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(entry) = self.lock().by_key.get_mut(key) {
            change(&mut entry.value);
        }
    }

    /// The hub's count of changes of this cache's kind, to read before the store (see
    /// [`Cache::keep`]).
    fn generation(&self) -> u64 {
        self.hub.generation(self.kind)
    }

    /// Keeps `value` (forgets `key` when `None`), read from the store when the hub's count
    /// was `generation`: read before the store, so a change made meanwhile leaves this entry
    /// stale rather than wrong.
    ///
    /// A stale entry is only replaced when its key is read again, and keys come and go (a
    /// session per login): once the cache has grown to its sweep size, an insert first drops
    /// every stale entry, so it holds about what was read within one TTL.
    fn keep(&self, key: K, value: Option<&V>, generation: u64) {
        let mut entries = self.lock();
        let Some(value) = value else {
            entries.by_key.remove(&key);
            return;
        };
        if entries.by_key.len() >= entries.sweep_at {
            let now = self.generation();
            entries.by_key.retain(|_, e| self.is_fresh(e, now));
            entries.sweep_at = (entries.by_key.len() * 2).max(SWEEP_AT);
        }
        let entry = Entry {
            value: value.clone(),
            at: Instant::now(),
            generation,
        };
        entries.by_key.insert(key, entry);
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
        Ok(self.0.read_through(&(), read).await?.unwrap_or_default())
    }

    /// The list read again now, and kept: for a project named that the cached list lacks
    /// (made a moment ago outside this server, `vigie project create`).
    pub async fn reread(&self, store: &dyn Store) -> Result<Arc<[Project]>, StoreError> {
        self.0.keep((), None, self.0.generation());
        self.get(store).await
    }

    /// The project whose key is `key` (any case, as keys are given): the one lookup every
    /// route that takes a project key uses (job progress, log lines, monitor pings). A rotated
    /// key is gone from the list as soon as the hub hears of it.
    ///
    /// A key the list lacks is looked up by itself (one indexed read) rather than by reading
    /// the list again: a sender with a wrong key, however many requests it sends, neither
    /// reads the whole list nor empties the cache every other request relies on. Only a key
    /// found there (a project made a moment ago outside this server) reads the list again.
    pub async fn with_key(
        &self,
        store: &dyn Store,
        key: &str,
    ) -> Result<Option<Project>, StoreError> {
        let keyed = |p: &Project| p.public_key.as_str().eq_ignore_ascii_case(key);
        if let Some(found) = self.get(store).await?.iter().find(|p| keyed(p)) {
            return Ok(Some(found.clone()));
        }
        let Some(found) = store.project_by_key(key).await? else {
            return Ok(None);
        };
        self.reread(store).await?;
        Ok(Some(found))
    }

    /// The first project `pick` chooses: from the cached list, else from the list read
    /// again (a project made a moment ago outside this server).
    pub async fn find(
        &self,
        store: &dyn Store,
        pick: impl Fn(&Project) -> bool,
    ) -> Result<Option<Project>, StoreError> {
        let find = |list: &[Project]| list.iter().find(|p| pick(p)).cloned();
        if let Some(found) = find(&self.get(store).await?) {
            return Ok(Some(found));
        }
        Ok(find(&self.reread(store).await?))
    }
}

/// API tokens by the hash of their secret, as [`Store::api_token_by_hash`] answers them; a
/// secret that finds no token is not kept, so a token made a moment ago works at once.
pub struct ApiTokens(Cache<String, ApiToken>);

impl ApiTokens {
    pub fn new(hub: Hub) -> Self {
        ApiTokens(Cache::of(hub, Cached::Tokens, TOKEN_TTL))
    }

    pub async fn by_hash(
        &self,
        store: &dyn Store,
        hash: &str,
    ) -> Result<Option<ApiToken>, StoreError> {
        let read = store.api_token_by_hash(hash);
        self.0.read_through(hash, read).await
    }

    /// Notes that this instance recorded a use of the token at `at`, so the cached copy
    /// does not ask for the same record again on the next request.
    pub fn used(&self, hash: &str, at: Timestamp) {
        self.0.amend(hash, |token| token.last_used_at = Some(at));
    }
}

/// Browser sessions by the hash of their cookie, as [`Store::session`] answers them. A
/// session is kept with the user it carries (their role decides what they may do), so any
/// change of users, and a logout, makes every kept session stale (`Change::Users`); one past
/// its expiry is refused from memory as the store would refuse it.
pub struct Sessions(Cache<String, Session>);

impl Sessions {
    pub fn new(hub: Hub) -> Self {
        Sessions(Cache::of(hub, Cached::Users, TOKEN_TTL))
    }

    pub async fn by_hash(
        &self,
        store: &dyn Store,
        hash: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let read = store.session(hash, now);
        let session = self.0.read_through(hash, read).await?;
        Ok(session.filter(|s| s.expires_at > now))
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
        hub.forget(Cached::Projects);
        cache.keep(1, Some(&"one, renamed"), read_at);
        assert_eq!(cache.fresh(&1), None, "kept stale, not served");

        cache.keep(1, Some(&"two"), cache.generation());
        assert_eq!(cache.fresh(&1), Some("two"));
        cache.keep(1, None, cache.generation());
        assert_eq!(cache.fresh(&1), None, "forgotten");
    }

    #[test]
    fn stale_entries_are_swept_out_as_keys_come_and_go() {
        let (hub, _shutdown) = Hub::new();
        let ttl = Duration::from_millis(50);
        let cache: Cache<usize, usize> = Cache::of(hub, Cached::Users, ttl);
        let held = |cache: &Cache<usize, usize>| cache.lock().by_key.len();
        for key in 0..SWEEP_AT {
            cache.keep(key, Some(&key), cache.generation());
        }
        assert_eq!(held(&cache), SWEEP_AT, "nothing swept while all are fresh");
        // Fresh entries are never dropped: the sweep size grows past them.
        cache.keep(SWEEP_AT, Some(&SWEEP_AT), cache.generation());
        assert_eq!(held(&cache), SWEEP_AT + 1);
        assert_eq!(cache.fresh(&0), Some(0));

        std::thread::sleep(ttl + Duration::from_millis(10));
        // Keys of another day: the old ones, never read again, go at the next sweep.
        let later = 10 * SWEEP_AT;
        for key in later..later + 2 * SWEEP_AT + 2 {
            cache.keep(key, Some(&key), cache.generation());
        }
        assert!(held(&cache) <= 2 * SWEEP_AT + 2, "{} held", held(&cache));
        assert!(!cache.lock().by_key.contains_key(&0), "swept out");
        assert_eq!(cache.fresh(&later), Some(later), "fresh entries stay");
        assert_eq!(
            cache.fresh(&(later + 2 * SWEEP_AT + 1)),
            Some(later + 2 * SWEEP_AT + 1)
        );
    }

    #[test]
    fn a_token_revoked_leaves_projects_fresh_and_a_kept_token_ages_out() {
        let (hub, _shutdown) = Hub::new();
        let projects: Cache<u8, &str> = Cache::new(hub.clone());
        let tokens: Cache<u8, &str> =
            Cache::of(hub.clone(), Cached::Tokens, Duration::from_millis(50));
        projects.keep(1, Some(&"project"), projects.generation());
        tokens.keep(1, Some(&"token"), tokens.generation());

        hub.publish(crate::hub::Change::Tokens);
        assert_eq!(projects.fresh(&1), Some("project"), "another kind");
        assert_eq!(tokens.fresh(&1), None, "revoked here");

        tokens.keep(1, Some(&"token"), tokens.generation());
        tokens.amend(&1, |token| *token = "token, used");
        assert_eq!(tokens.fresh(&1), Some("token, used"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(tokens.fresh(&1), None, "older than its TTL");
        assert_eq!(projects.fresh(&1), Some("project"));
    }
}
