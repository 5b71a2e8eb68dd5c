//! Ingest request bodies: read only once the caller is known, within one memory budget shared
//! by every request, inflated under a cap, and costed before they are parsed.
//!
//! ```text
//! request ─▶ handler extractors: who is it? (project key, token) ── no ──▶ 401/403, body unread
//!                 │ yes
//!                 ▼
//!            storage far behind (SHED_WRITES_WAITING)? ─▶ 503 + Retry-After, body unread
//!                 │
//!                 ▼
//!            IngestBody: Content-Length over max_body? ─▶ 413
//!                 │  read frame by frame, reserving each frame's bytes ── budget taken ─▶ 503
//!                 ▼
//!            Content-Encoding? inflate (gzip, deflate, br, zstd), reserving as it grows,
//!                 │  stopping at max_decompressed ─▶ 413
//!                 ▼
//!            handler: IngestBody::reserve_elements(weight of the body) ─▶ 413 / 503
//!                 │  parse, store, answer; the reservation ends with the request
//! ```
//!
//! Axum runs a handler's header extractors before its body extractor, so putting
//! [`IngestBody`] last in a handler's arguments is what makes "authenticate, then read" hold.
//! Sentry SDKs compress envelopes (gzip, or br), OTLP exporters send gzip; Loki shippers send
//! snappy inside the body, inflated by `vigie_protocol::logs::loki::unsnap` under the same cap.

use super::AppError;
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use http_body_util::BodyExt;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a request waits for room in the budget before it is told to come back.
const WAIT_FOR_BUDGET: Duration = Duration::from_millis(500);
/// Bodies up to this size as sent are inflated on the request's own thread.
const INFLATE_INLINE: usize = 64 << 10;
/// The budget is counted in KiB, so a semaphore's permit count holds any size.
const UNIT: usize = 1024;

/// Writes waiting for storage past which ingest requests are turned away at once (503) rather
/// than queued: a queue this long already means ~a second of wait for the last in it, and a
/// longer one only adds latency and memory for everyone (the SQLite writer's queue holds 4,096).
pub const SHED_WRITES_WAITING: usize = 1024;

/// How many writes wait for storage now (`Store::write_queue_depth`).
pub type WritesWaiting = Arc<dyn Fn() -> usize + Send + Sync>;

/// The body limits, and the memory every ingest request together may hold at once.
#[derive(Clone)]
pub struct IngestBudget {
    pub max_body: usize,
    pub max_decompressed: usize,
    pub max_records: usize,
    total: usize,
    room: Arc<Semaphore>,
    writes_waiting: WritesWaiting,
}

impl IngestBudget {
    pub fn new(
        max_body: usize,
        max_decompressed: usize,
        max_records: usize,
        total: usize,
        writes_waiting: WritesWaiting,
    ) -> IngestBudget {
        IngestBudget {
            writes_waiting,
            max_body,
            max_decompressed,
            max_records,
            total,
            room: Arc::new(Semaphore::new(total.div_ceil(UNIT))),
        }
    }

    /// Bytes reserved by requests in flight now (the System page and `/metrics`).
    pub fn in_use(&self) -> usize {
        self.total
            .div_ceil(UNIT)
            .saturating_sub(self.room.available_permits())
            * UNIT
    }

    pub fn total(&self) -> usize {
        self.total
    }

    fn units(&self, bytes: usize, what: &str) -> Result<u32, AppError> {
        if bytes > self.total {
            return Err(AppError::PayloadTooLarge(format!(
                "{what} would need {} MiB to read, more than the {} MiB all ingest requests may \
                 use together (limits.ingest_budget_mib): send smaller batches",
                bytes.div_ceil(1 << 20),
                self.total >> 20
            )));
        }
        Ok(u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX))
    }

    /// Refuses new work while storage is far behind (see [`SHED_WRITES_WAITING`]).
    fn shed_when_behind(&self) -> Result<(), AppError> {
        let waiting = (self.writes_waiting)();
        if waiting >= SHED_WRITES_WAITING {
            return Err(AppError::Overloaded {
                retry_after: 2,
                message: format!(
                    "{waiting} writes are waiting for storage: retry in a few seconds"
                ),
            });
        }
        Ok(())
    }

    /// Reserves `bytes`, waiting a little for room.
    async fn reserve(&self, bytes: usize, what: &str) -> Result<OwnedSemaphorePermit, AppError> {
        let units = self.units(bytes, what)?;
        match tokio::time::timeout(WAIT_FOR_BUDGET, self.room.clone().acquire_many_owned(units))
            .await
        {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(busy()),
        }
    }

    /// Adds `bytes` to what a request holds. Only a request that holds nothing waits for room:
    /// requests holding part of the budget while waiting for more would, all together, keep it
    /// taken with nobody able to go on (measured: 4 uploads of 600 got through, the rest timed
    /// out waiting). One that holds something and finds no room is refused at once, and
    /// letting go of what it held lets the others through.
    async fn add(
        &self,
        held: &mut Option<OwnedSemaphorePermit>,
        bytes: usize,
        what: &str,
    ) -> Result<(), AppError> {
        let permit = if held.is_none() {
            self.reserve(bytes, what).await?
        } else {
            self.try_reserve(bytes, what)?
        };
        merge(held, permit);
        Ok(())
    }

    /// Reserves `bytes` now or never (for code that cannot wait: inflating on a blocking
    /// thread).
    fn try_reserve(&self, bytes: usize, what: &str) -> Result<OwnedSemaphorePermit, AppError> {
        let units = self.units(bytes, what)?;
        self.room
            .clone()
            .try_acquire_many_owned(units)
            .map_err(|_| busy())
    }
}

fn busy() -> AppError {
    AppError::Overloaded {
        retry_after: 1,
        message: "Vigie is reading as much as it may hold at once: retry in a second".into(),
    }
}

/// A request body read after the caller was authenticated, inflated, with the memory it holds
/// reserved until the request ends.
pub struct IngestBody {
    pub bytes: Bytes,
    budget: IngestBudget,
    held: Option<OwnedSemaphorePermit>,
}

impl IngestBody {
    /// Reserves what parsing will build from the body: `elements` counted by
    /// `vigie_protocol::weight`, each up to `BYTES_PER_ELEMENT` beyond the body itself.
    pub async fn reserve_elements(&mut self, elements: usize) -> Result<(), AppError> {
        let bytes = elements.saturating_mul(vigie_protocol::weight::BYTES_PER_ELEMENT);
        // A request that could never fit, with what it holds already, is refused outright.
        self.budget
            .units(bytes.saturating_add(self.held_bytes()), "this request")?;
        self.budget.add(&mut self.held, bytes, "this request").await
    }

    /// Reserves room for a body inflated another way (Loki's snappy) before inflating it.
    pub async fn reserve_bytes(&mut self, bytes: usize) -> Result<(), AppError> {
        self.budget.add(&mut self.held, bytes, "this request").await
    }

    /// The cap on records one request may carry (`limits.max_records_per_request`), with the
    /// refusal for going past it.
    pub fn check_records(&self, count: usize, what: &str) -> Result<(), AppError> {
        if count > self.budget.max_records {
            return Err(AppError::PayloadTooLarge(format!(
                "the request carries {count} {what}, more than the {} one request may carry \
                 (limits.max_records_per_request): send them in smaller batches; nothing of \
                 this request was stored",
                self.budget.max_records
            )));
        }
        Ok(())
    }

    pub fn max_decompressed(&self) -> usize {
        self.budget.max_decompressed
    }

    fn held_bytes(&self) -> usize {
        self.held.as_ref().map_or(0, |p| p.num_permits() * UNIT)
    }
}

/// Any state that has the ingest budget (the server's `AppState`) reads ingest bodies.
impl<S> FromRequest<S> for IngestBody
where
    S: Send + Sync,
    IngestBudget: FromRef<S>,
{
    type Rejection = super::ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, super::ApiError> {
        Ok(read(req, IngestBudget::from_ref(state)).await?)
    }
}

/// Bodies above this are parsed and shaped on the blocking pool, not on a request thread:
/// a large export takes milliseconds of CPU that other requests should not wait behind.
pub const INLINE_BYTES: usize = 256 << 10;

/// Runs `work` on the blocking pool when `large`, else right here.
pub async fn off_runtime_if<T: Send + 'static>(
    large: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    if large {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AppError::Internal(format!("ingest work stopped: {e}")))
    } else {
        Ok(work())
    }
}

/// Reads, reserves and inflates a request's body (see the module doc).
pub async fn read(req: Request, budget: IngestBudget) -> Result<IngestBody, AppError> {
    read_raw(req, budget).await?.inflate().await
}

/// A body as sent, before inflating: for the one caller that must look inside before it knows
/// who sends (a Sentry envelope whose only key is the DSN in its header line).
pub struct RawBody {
    raw: Vec<u8>,
    encoding: Option<String>,
    budget: IngestBudget,
    held: Option<OwnedSemaphorePermit>,
}

/// Reads a request's body as sent, reserving its bytes frame by frame.
pub async fn read_raw(req: Request, budget: IngestBudget) -> Result<RawBody, AppError> {
    budget.shed_when_behind()?;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > budget.max_body) {
        return Err(too_large("request body", budget.max_body));
    }
    let encoding = req
        .headers()
        .get(CONTENT_ENCODING)
        .map(|v| {
            v.to_str()
                .unwrap_or("(not text)")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|e| !e.is_empty() && e != "identity");
    let mut held: Option<OwnedSemaphorePermit> = None;
    if let Some(len) = declared {
        budget.add(&mut held, len, "this request body").await?;
    }
    let mut body = req.into_body();
    let mut raw = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| AppError::BadRequest(format!("could not read the body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if raw.len() + data.len() > budget.max_body {
            return Err(too_large("request body", budget.max_body));
        }
        if raw.len() + data.len() > declared.unwrap_or(0) {
            budget
                .add(&mut held, data.len(), "this request body")
                .await?;
        }
        raw.extend_from_slice(&data);
    }
    Ok(RawBody {
        raw,
        encoding,
        budget,
        held,
    })
}

impl RawBody {
    /// The body's first line, inflated as far as `max` bytes at most (whatever the rest
    /// would inflate to).
    pub fn first_line(&self, max: usize) -> Result<Vec<u8>, AppError> {
        let mut prefix = match &self.encoding {
            None => self.raw[..self.raw.len().min(max)].to_vec(),
            Some(encoding) => {
                let mut out = Vec::new();
                decoder(encoding, &self.raw)?
                    .take(max as u64)
                    .read_to_end(&mut out)
                    .map_err(|e| {
                        AppError::BadRequest(format!(
                            "the {encoding} request body is not valid: {e}"
                        ))
                    })?;
                out
            }
        };
        if let Some(end) = prefix.iter().position(|b| *b == b'\n') {
            prefix.truncate(end);
        }
        Ok(prefix)
    }

    /// Inflates the body (on a blocking thread), reserving the budget as the output grows.
    pub async fn inflate(self) -> Result<IngestBody, AppError> {
        let RawBody {
            raw,
            encoding,
            budget,
            mut held,
        } = self;
        let raw_len = raw.len();
        let Some(encoding) = encoding else {
            return Ok(IngestBody {
                bytes: Bytes::from(raw),
                budget,
                held,
            });
        };
        let inflating = budget.clone();
        let mut holding = held.as_ref().map_or(0, |p| p.num_permits() * UNIT);
        let mut work = move || {
            let mut grown: Option<OwnedSemaphorePermit> = None;
            let out = inflate(&encoding, &raw, inflating.max_decompressed, |more| {
                // More than the whole budget, with what the request holds, can never fit:
                // 413, not "busy".
                holding += more;
                inflating.units(holding, "this request body, inflated")?;
                let permit = inflating.try_reserve(more, "this request body, inflated")?;
                merge(&mut grown, permit);
                Ok(())
            });
            out.map(|out| (out, grown))
        };
        // A small body inflates in microseconds: on this thread. Sending each to the blocking
        // pool would start a thread per request in a burst of small SDK envelopes, and every
        // thread its own allocator arena (measured: +115 MiB peak over 4,000 clients).
        let (inflated, grown) = if raw_len <= INFLATE_INLINE {
            work()?
        } else {
            tokio::task::spawn_blocking(work)
                .await
                .map_err(|e| AppError::Internal(e.to_string()))??
        };
        if let Some(grown) = grown {
            merge(&mut held, grown);
        }
        Ok(IngestBody {
            bytes: Bytes::from(inflated),
            budget,
            held,
        })
    }
}

fn merge(held: &mut Option<OwnedSemaphorePermit>, permit: OwnedSemaphorePermit) {
    match held {
        Some(h) => h.merge(permit),
        None => *held = Some(permit),
    }
}

fn too_large(what: &str, limit: usize) -> AppError {
    AppError::PayloadTooLarge(format!(
        "the {what} is larger than the {} MiB limit",
        limit >> 20
    ))
}

/// Inflates `raw` per `encoding`, refusing output past `cap` bytes; `reserve` is asked for
/// room before each chunk of output is kept.
pub fn inflate(
    encoding: &str,
    raw: &[u8],
    cap: usize,
    mut reserve: impl FnMut(usize) -> Result<(), AppError>,
) -> Result<Vec<u8>, AppError> {
    // Output grows in chunks reserved one at a time: from about four times the input (a
    // small SDK envelope then costs a few KiB, not a whole chunk) doubling up to MAX_CHUNK.
    const MAX_CHUNK: usize = 256 << 10;
    let mut chunk = (raw.len() * 4).clamp(4 << 10, MAX_CHUNK);
    let mut reader = decoder(encoding, raw)?;
    let mut out = Vec::new();
    loop {
        if out.len() > cap {
            return Err(too_large("decompressed request body", cap));
        }
        reserve(chunk)?;
        let start = out.len();
        out.resize(start + chunk, 0);
        let mut filled = start;
        while filled < out.len() {
            match reader.read(&mut out[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(AppError::BadRequest(format!(
                        "the {encoding} request body is not valid: {e}"
                    )))
                }
            }
        }
        out.truncate(filled);
        if filled < start + chunk {
            break;
        }
        chunk = (chunk * 2).min(MAX_CHUNK);
    }
    if out.len() > cap {
        return Err(too_large("decompressed request body", cap));
    }
    out.shrink_to_fit();
    Ok(out)
}

/// A reader of `raw` inflating it per `encoding`.
fn decoder<'a>(encoding: &str, raw: &'a [u8]) -> Result<Box<dyn Read + Send + 'a>, AppError> {
    Ok(match encoding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        // HTTP's "deflate" is zlib-wrapped, but some clients send a raw deflate stream.
        "deflate" if looks_like_zlib(raw) => Box::new(flate2::read::ZlibDecoder::new(raw)),
        "deflate" => Box::new(flate2::read::DeflateDecoder::new(raw)),
        "br" => Box::new(brotli_decompressor::Decompressor::new(raw, 4096)),
        "zstd" => Box::new(
            zstd::stream::read::Decoder::with_buffer(raw)
                .map_err(|e| AppError::BadRequest(format!("the zstd body is not valid: {e}")))?,
        ),
        other => {
            return Err(AppError::UnsupportedMediaType(format!(
                "Content-Encoding {other:?} is not supported: use gzip, deflate, br or zstd"
            )))
        }
    })
}

/// A zlib header: compression method 8 and a header checksum divisible by 31 (RFC 1950).
fn looks_like_zlib(raw: &[u8]) -> bool {
    raw.len() >= 2 && raw[0] & 0x0f == 8 && (u16::from(raw[0]) << 8 | u16::from(raw[1])) % 31 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = b"{\"message\": \"Erreur email 3/500: facture_CCT_003 - Quota exceeded\"}";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn inflates_every_supported_encoding() {
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(TEXT).unwrap();
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(TEXT).unwrap();
        let zstd = zstd::encode_all(TEXT, 3).unwrap();
        let br = brotli_compress(TEXT);
        for (encoding, body) in [
            ("gzip", gzip(TEXT)),
            ("deflate", zlib.finish().unwrap()),
            ("deflate", raw.finish().unwrap()),
            ("zstd", zstd),
            ("br", br),
        ] {
            assert_eq!(
                inflate(encoding, &body, 1 << 20, |_| Ok(())).unwrap(),
                TEXT,
                "{encoding}"
            );
        }
    }

    /// A brotli stream of uncompressed meta-blocks, written by hand so the test needs no
    /// brotli encoder: WBITS=16, then one ISLAST=0 uncompressed block, then an empty last block.
    fn brotli_compress(data: &[u8]) -> Vec<u8> {
        assert!(!data.is_empty() && data.len() <= 65536);
        let mut bits = BitWriter::default();
        bits.put(0, 1); // WBITS = 16
        bits.put(0, 1); // ISLAST = 0
        bits.put(0, 2); // MNIBBLES = 4
        bits.put((data.len() - 1) as u64, 16); // MLEN - 1
        bits.put(1, 1); // ISUNCOMPRESSED
        bits.align();
        bits.bytes.extend_from_slice(data);
        bits.put(1, 1); // ISLAST = 1
        bits.put(1, 1); // ISLASTEMPTY = 1
        bits.align();
        bits.bytes
    }

    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        used: u32,
    }

    impl BitWriter {
        fn put(&mut self, value: u64, count: u32) {
            for i in 0..count {
                if self.used == 0 {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                *self.bytes.last_mut().unwrap() |= bit << self.used;
                self.used = (self.used + 1) % 8;
            }
        }
        fn align(&mut self) {
            self.used = 0;
        }
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        let bomb = gzip(&vec![0u8; 8 << 20]);
        assert!(bomb.len() < 64 << 10);
        let err = inflate("gzip", &bomb, 1 << 20, |_| Ok(())).unwrap_err();
        assert!(matches!(err, AppError::PayloadTooLarge(_)), "{err}");
    }

    #[test]
    fn garbage_and_unknown_encodings_are_refused() {
        let err = inflate("gzip", b"not gzip at all", 1 << 20, |_| Ok(())).unwrap_err();
        assert!(matches!(err, AppError::BadRequest(_)), "{err}");
        let err = inflate("compress", TEXT, 1 << 20, |_| Ok(())).unwrap_err();
        assert!(matches!(err, AppError::UnsupportedMediaType(_)), "{err}");
    }

    #[test]
    fn inflating_stops_when_the_budget_says_so() {
        let body = gzip(&vec![b'x'; 4 << 20]);
        let mut granted = 0;
        let err = inflate("gzip", &body, 64 << 20, |more| {
            granted += more;
            if granted > 1 << 20 {
                Err(AppError::Unavailable("full".into()))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(matches!(err, AppError::Unavailable(_)), "{err}");
        // Exactly what fits: a body of a whole number of chunks, and an empty one.
        let exact = gzip(&vec![b'y'; 512 << 10]);
        assert_eq!(
            inflate("gzip", &exact, 512 << 10, |_| Ok(()))
                .unwrap()
                .len(),
            512 << 10
        );
        assert!(inflate("gzip", &exact, (512 << 10) - 1, |_| Ok(())).is_err());
        assert!(inflate("gzip", &gzip(b""), 10, |_| Ok(()))
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn the_budget_refuses_what_can_never_fit_and_waits_for_the_rest() {
        let budget = IngestBudget::new(1 << 20, 1 << 20, 10, 4 << 20, Arc::new(|| 0));
        let err = budget.reserve(5 << 20, "this").await.unwrap_err();
        assert!(matches!(err, AppError::PayloadTooLarge(_)), "{err}");
        let held = budget.reserve(3 << 20, "this").await.unwrap();
        assert_eq!(budget.in_use(), 3 << 20);
        let err = budget.reserve(2 << 20, "this").await.unwrap_err();
        assert!(matches!(err, AppError::Overloaded { .. }), "{err}");
        drop(held);
        assert_eq!(budget.in_use(), 0);
        assert!(budget.try_reserve(4 << 20, "this").is_ok());
    }

    #[tokio::test]
    async fn new_bodies_are_turned_away_unread_while_storage_is_far_behind() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let waiting = Arc::new(AtomicUsize::new(0));
        let depth = waiting.clone();
        let budget = IngestBudget::new(
            1 << 20,
            1 << 20,
            10,
            4 << 20,
            Arc::new(move || depth.load(Ordering::Relaxed)),
        );
        let request = || Request::new(axum::body::Body::from("{}"));
        assert!(read(request(), budget.clone()).await.is_ok());
        waiting.store(SHED_WRITES_WAITING, Ordering::Relaxed);
        let err = read(request(), budget.clone()).await.err().unwrap();
        assert!(
            matches!(err, AppError::Overloaded { retry_after: 2, .. }),
            "{err}"
        );
        assert_eq!(budget.in_use(), 0, "nothing read, nothing held");
        waiting.store(SHED_WRITES_WAITING - 1, Ordering::Relaxed);
        assert!(read(request(), budget).await.is_ok());
    }
}
