//! Request bodies sent with `Content-Encoding`, inflated before any handler sees them.
//!
//! Sentry SDKs compress envelopes (gzip, or br when `brotli` is importable), OTLP exporters send
//! gzip, Loki shippers snappy-inside-protobuf (handled by its own parser later). Two limits keep
//! this safe: the body as sent may be at most `max_body` bytes, and inflating stops one byte
//! past `max_decompressed` — a 20 KiB "zip bomb" costs at most that much memory, then gets 413.

use super::AppError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use axum::middleware::Next;
use axum::response::Response;
use std::io::Read;

#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub max_body: usize,
    pub max_decompressed: usize,
}

/// Middleware: refuses oversized bodies early and replaces an encoded body by its inflated form.
pub async fn decompress(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    match prepare(limits, req).await {
        Ok(req) => next.run(req).await,
        Err(err) => err.respond_for(&path),
    }
}

async fn prepare(limits: BodyLimits, req: Request) -> Result<Request, AppError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limits.max_body) {
        return Err(too_large("request body", limits.max_body));
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
    let Some(encoding) = encoding else {
        return Ok(req);
    };
    let (mut parts, body) = req.into_parts();
    let raw = axum::body::to_bytes(body, limits.max_body)
        .await
        .map_err(|err| {
            if exceeded_limit(&err) {
                too_large("request body", limits.max_body)
            } else {
                AppError::BadRequest(format!("could not read the request body: {err}"))
            }
        })?;
    let inflated =
        tokio::task::spawn_blocking(move || inflate(&encoding, &raw, limits.max_decompressed))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))??;
    parts.headers.remove(CONTENT_ENCODING);
    parts.headers.insert(CONTENT_LENGTH, inflated.len().into());
    Ok(Request::from_parts(parts, Body::from(inflated)))
}

/// Whether reading the body stopped at the byte limit (rather than, say, a dropped client).
fn exceeded_limit(err: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

fn too_large(what: &str, limit: usize) -> AppError {
    AppError::PayloadTooLarge(format!(
        "the {what} is larger than the {} MiB limit",
        limit >> 20
    ))
}

/// Inflates `raw` per `encoding`, refusing output past `cap` bytes.
pub fn inflate(encoding: &str, raw: &[u8], cap: usize) -> Result<Vec<u8>, AppError> {
    let reader: Box<dyn Read + Send + '_> = match encoding {
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
    };
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(cap));
    reader
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            AppError::BadRequest(format!("the {encoding} request body is not valid: {e}"))
        })?;
    if out.len() > cap {
        return Err(too_large("decompressed request body", cap));
    }
    Ok(out)
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
                inflate(encoding, &body, 1 << 20).unwrap(),
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
        let err = inflate("gzip", &bomb, 1 << 20).unwrap_err();
        assert!(matches!(err, AppError::PayloadTooLarge(_)), "{err}");
    }

    #[test]
    fn garbage_and_unknown_encodings_are_refused() {
        let err = inflate("gzip", b"not gzip at all", 1 << 20).unwrap_err();
        assert!(matches!(err, AppError::BadRequest(_)), "{err}");
        let err = inflate("compress", TEXT, 1 << 20).unwrap_err();
        assert!(matches!(err, AppError::UnsupportedMediaType(_)), "{err}");
    }
}
