//! What a backend provides, and the one [`Db`] every feature's storage is written against.
//!
//! ```text
//!   server ── Arc<dyn Store> ── Db<E> ── feature traits (AccountStore, JobStore, LogStore, …)
//!                                 │        each method: self.read(op, |tx| …) / self.write(op, |tx| …)
//!                                 ▼
//!                          E: Engine ── SqliteEngine: one writer thread (group commit) + readers
//!                                   └── PgEngine:     a pool; one transaction per write
//! ```
//!
//! A backend knows how to hand a connection to a piece of work ([`Work`]) for reading, or
//! inside a transaction for writing; everything else (the SQL, the rules, the row decoding) is
//! written once in the feature modules against [`Tx`]. So a new query costs one method in one
//! file, whatever the backend.

use crate::tx::{BoxFuture, Tx};
use crate::{Backend, Result};
use std::future::Future;
use tracing::Instrument;

/// A piece of storage work: given a connection, answers a future of its result.
pub(crate) type Work<T> =
    Box<dyn for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T>> + Send + 'static>;

/// A database engine: runs [`Work`] on its connections.
pub(crate) trait Engine: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    /// Runs `work` on a connection that sees committed data.
    fn read<T: Send + 'static>(&self, work: Work<T>) -> impl Future<Output = Result<T>> + Send;
    /// Runs `work` inside a transaction and answers once that transaction has committed (an
    /// error from `work` rolls back what it wrote, and only that).
    fn write<T: Send + 'static>(&self, work: Work<T>) -> impl Future<Output = Result<T>> + Send;
    /// Bytes the database occupies on disk.
    fn database_size(&self) -> impl Future<Output = Result<u64>> + Send;
    /// Writes waiting for the database (0 where there is no queue).
    fn write_queue_depth(&self) -> usize;
    /// Finishes queued writes and releases connections.
    fn close(&self) -> impl Future<Output = ()> + Send;
    /// Tries to become the leader (see `crate::lead`).
    fn try_lead(&self) -> impl Future<Output = Result<Option<Box<dyn crate::lead::Lead>>>> + Send;
    /// Listens to other instances' notifications (`None` where there can be none).
    fn listen(&self) -> impl Future<Output = Result<Option<crate::lead::Listener>>> + Send;
}

use crate::logs::store::{
    BlobCache, SourceNames, BLOCK_CACHE_BYTES, BLOOM_CACHE_BYTES, CHUNK_CACHE_BYTES,
    HEAD_CACHE_BYTES, SOURCE_NAME_BYTES,
};

/// The store: one engine, and every feature's storage written once on top of it.
pub(crate) struct Db<E> {
    engine: E,
    /// Log blocks' bloom filters, heads and (on PostgreSQL) data already read (see
    /// `crate::logs::store`).
    blooms: BlobCache,
    heads: BlobCache,
    blocks: BlobCache,
    /// Block groups' filter chunks already read, by (group, chunk).
    group_chunks: BlobCache<(i64, i64)>,
    /// Log sources' names already read, by id.
    source_names: SourceNames,
}

impl<E: Engine> Db<E> {
    pub(crate) fn new(engine: E) -> Db<E> {
        // SQLite reads a block from the page cache, in process; PostgreSQL sends it over the
        // wire, out of its TOAST table, 2 KiB at a time: worth keeping there only.
        let blocks = match engine.backend() {
            Backend::Postgres => BLOCK_CACHE_BYTES,
            Backend::Sqlite => 0,
        };
        Db {
            engine,
            blooms: BlobCache::new(BLOOM_CACHE_BYTES),
            heads: BlobCache::new(HEAD_CACHE_BYTES),
            blocks: BlobCache::new(blocks),
            group_chunks: BlobCache::new(CHUNK_CACHE_BYTES),
            source_names: SourceNames::new(SOURCE_NAME_BYTES),
        }
    }

    pub(crate) fn engine(&self) -> &E {
        &self.engine
    }

    pub(crate) fn blooms(&self) -> &BlobCache {
        &self.blooms
    }

    pub(crate) fn heads(&self) -> &BlobCache {
        &self.heads
    }

    pub(crate) fn blocks(&self) -> &BlobCache {
        &self.blocks
    }

    pub(crate) fn group_chunks(&self) -> &BlobCache<(i64, i64)> {
        &self.group_chunks
    }

    pub(crate) fn source_names(&self) -> &SourceNames {
        &self.source_names
    }

    /// Drops what the caches hold of blocks this store deletes.
    pub(crate) fn forget_blocks(&self, ids: &[i64]) {
        for cache in [&self.blooms, &self.heads, &self.blocks] {
            cache.forget(ids);
        }
    }

    /// Runs a read; `op` names it in the `store` span.
    pub(crate) async fn read<T, F>(&self, op: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T>> + Send + 'static,
    {
        let span = tracing::debug_span!("store", op, backend = self.engine.backend().as_str());
        self.engine.read(Box::new(work)).instrument(span).await
    }

    /// Runs a write, answered after its commit; `op` names it in the `store` span.
    pub(crate) async fn write<T, F>(&self, op: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T>> + Send + 'static,
    {
        let span = tracing::debug_span!(
            "store",
            op,
            backend = self.engine.backend().as_str(),
            write = true
        );
        self.engine.write(Box::new(work)).instrument(span).await
    }
}
