//! One block of log records on disk: encoding, decoding, and the summary stored beside it.
//!
//! ```text
//! data = [u32 LE head length] [zstd(head)] [zstd(body)]
//! head = varint count, then per record: zigzag time delta, zigzag received delta, level, flags
//! body = per record: level_raw, logger, message, job_id, trace_id, span_id,
//!        varint field count, (name, value)*            — every string varint-length-prefixed
//! ```
//!
//! Records are sorted by time before encoding, so deltas are small and a block reads oldest
//! first. The head is its own zstd frame: counts and histograms of a query with no text terms
//! need only times and levels, and read and decode the head alone (the row's `head_end` says
//! how long a prefix of `data` that is). The source is not stored per record:
//! a block holds records of one source, named by the block's row.

use super::bloom::Bloom;
use crate::{Result, StoreError};
use std::ops::ControlFlow;
use vigie_core::log::{FieldList, RecordRef};
use vigie_core::varint;
use vigie_core::{Level, LogRecord};

/// zstd level 1, not zstd's default 3: on the `logs` scenario's lines level 3 made the
/// compressed records only 0.4 % smaller and cost a twentieth more CPU per line ingested
/// (BENCHMARKS.md, "Log records with inline texts").
const ZSTD_LEVEL: i32 = 1;

/// A block ready to be written: its summary, bloom filter and compressed records.
#[derive(Clone, Debug)]
pub struct EncodedBlock {
    pub min_time: i64,
    pub max_time: i64,
    pub records: u32,
    pub level_counts: [u32; 7],
    /// Text bytes the records carried (the size they had as log lines).
    pub raw_bytes: u64,
    pub bloom: Vec<u8>,
    pub data: Vec<u8>,
}

impl EncodedBlock {
    pub fn level_mask(&self) -> u8 {
        level_mask(&self.level_counts)
    }
}

pub fn level_mask(counts: &[u32; 7]) -> u8 {
    Level::ALL
        .iter()
        .filter(|l| counts[**l as usize] > 0)
        .fold(0, |mask, l| mask | l.bit())
}

/// Encodes `records` (all of one source; sorted here by time). Panics on an empty slice.
pub fn encode(records: &mut [&LogRecord]) -> EncodedBlock {
    assert!(!records.is_empty(), "a block holds at least one record");
    records.sort_by_key(|r| r.time);
    let mut head = Vec::with_capacity(records.len() * 6 + 8);
    let mut body = Vec::with_capacity(records.iter().map(|r| r.text_len() + 16).sum());
    let mut level_counts = [0u32; 7];
    let mut raw_bytes = 0u64;
    let mut words = Bloom::builder();
    varint::put(&mut head, records.len() as u64);
    let (mut last_time, mut last_received) = (0i64, 0i64);
    for r in records.iter() {
        varint::put(&mut head, varint::zigzag(r.time.wrapping_sub(last_time)));
        varint::put(
            &mut head,
            varint::zigzag(r.received.wrapping_sub(last_received)),
        );
        (last_time, last_received) = (r.time, r.received);
        head.push(r.level as u8);
        head.push(r.flags);
        for text in [
            &r.level_raw,
            &r.logger,
            &r.message,
            &r.job_id,
            &r.trace_id,
            &r.span_id,
        ] {
            put_str(&mut body, text);
        }
        varint::put(&mut body, r.fields.len() as u64);
        for (name, value) in &r.fields {
            put_str(&mut body, name);
            put_str(&mut body, value);
        }
        level_counts[r.level as usize] += 1;
        raw_bytes += r.text_len() as u64 + 40;
        r.each_token(|w| words.add(w));
    }
    let head = compress(&head);
    let body = compress(&body);
    let mut data = Vec::with_capacity(4 + head.len() + body.len());
    data.extend_from_slice(&(head.len() as u32).to_le_bytes());
    data.extend_from_slice(&head);
    data.extend_from_slice(&body);
    EncodedBlock {
        min_time: records[0].time,
        max_time: records[records.len() - 1].time,
        records: records.len() as u32,
        level_counts,
        raw_bytes,
        bloom: words.finish(),
        data,
    }
}

pub(crate) fn compress(bytes: &[u8]) -> Vec<u8> {
    // Compressing a Vec in memory cannot fail short of allocation failure.
    zstd::bulk::compress(bytes, ZSTD_LEVEL).expect("zstd compression of an in-memory buffer")
}

/// Times and levels of a block's records, oldest first (the head alone).
#[derive(Clone, Debug, Default)]
pub struct Head {
    pub times: Vec<i64>,
    pub received: Vec<i64>,
    pub levels: Vec<Level>,
    pub flags: Vec<u8>,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::database(format!("a stored block is damaged: {what}"))
}

/// How many leading bytes of `data` hold the head: a prefix that [`decode_head`] reads alone.
pub fn head_end(data: &[u8]) -> Option<usize> {
    split(data).ok().map(|(head, _)| 4 + head.len())
}

fn split(data: &[u8]) -> Result<(&[u8], &[u8])> {
    let len = data
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| corrupt("too short"))?;
    let rest = &data[4..];
    if len > rest.len() {
        return Err(corrupt("head length"));
    }
    Ok(rest.split_at(len))
}

/// One zstd frame (as [`compress`] wrote it) back, refusing a claimed size past 256 MiB.
pub(crate) fn decompress(frame: &[u8]) -> Result<Vec<u8>> {
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .ok_or_else(|| corrupt("frame size"))?;
    // A block is at most a few MiB of text; a larger claim is damage, not data.
    if size > 256 << 20 {
        return Err(corrupt("frame too large"));
    }
    zstd::bulk::decompress(frame, size as usize).map_err(|e| corrupt(&e.to_string()))
}

/// Decodes the head only: times and levels.
pub fn decode_head(data: &[u8]) -> Result<Head> {
    let (head, _) = split(data)?;
    let head = decompress(head)?;
    let mut input = head.as_slice();
    let count = get_varint(&mut input)? as usize;
    let mut out = Head {
        times: Vec::with_capacity(count.min(1 << 20)),
        received: Vec::with_capacity(count.min(1 << 20)),
        levels: Vec::with_capacity(count.min(1 << 20)),
        flags: Vec::with_capacity(count.min(1 << 20)),
    };
    let (mut time, mut received) = (0i64, 0i64);
    for _ in 0..count {
        time = time.wrapping_add(varint::unzigzag(get_varint(&mut input)?));
        received = received.wrapping_add(varint::unzigzag(get_varint(&mut input)?));
        let [level, flags, rest @ ..] = input else {
            return Err(corrupt("head ends early"));
        };
        out.times.push(time);
        out.received.push(received);
        out.levels.push(Level::from_u8(*level));
        out.flags.push(*flags);
        input = rest;
    }
    Ok(out)
}

/// A block decompressed, its records not yet read: a search tests the text as a whole first
/// ([`open_if`]), then reads records in place ([`OpenBlock::each`]) and copies only those
/// that match.
pub struct OpenBlock {
    head: Head,
    body: Vec<u8>,
}

/// Opens a block: its head decoded, its body decompressed.
pub fn open(data: &[u8]) -> Result<OpenBlock> {
    open_if(data, |_| true)?.ok_or_else(|| corrupt("unreadable"))
}

/// Opens a block if its text — every string of every record, with the length bytes between
/// them — passes `admits` (a search's `vigie_core::logquery::TextFilter`); its head is
/// decoded only then, so a block a search passes over costs one decompression and one test.
pub fn open_if(data: &[u8], admits: impl FnOnce(&[u8]) -> bool) -> Result<Option<OpenBlock>> {
    let (_, body) = split(data)?;
    let body = decompress(body)?;
    if !admits(&body) {
        return Ok(None);
    }
    Ok(Some(OpenBlock {
        head: decode_head(data)?,
        body,
    }))
}

impl OpenBlock {
    /// Calls `visit` with each record, oldest first, and its index in the block; the record's
    /// texts borrow the block (`source` names its source).
    pub fn each(&self, source: &str, mut visit: impl FnMut(u32, &RecordRef<'_>)) -> Result<()> {
        let mut input = self.body.as_slice();
        for i in 0..self.head.times.len() {
            let texts = Texts::read(&mut input)?;
            visit(i as u32, &self.record(i, source, &texts));
        }
        Ok(())
    }

    /// Where each record's bytes begin in [`OpenBlock::text`], oldest first: their lengths
    /// are read, their bytes not checked.
    pub fn starts(&self) -> Result<Vec<usize>> {
        let count = self.head.times.len();
        let mut starts = Vec::with_capacity(count);
        let mut input = self.body.as_slice();
        for _ in 0..count {
            starts.push(self.body.len() - input.len());
            for _ in 0..6 {
                skip_str(&mut input)?;
            }
            for _ in 0..get_varint(&mut input)? {
                skip_str(&mut input)?;
                skip_str(&mut input)?;
            }
        }
        Ok(starts)
    }

    /// Every string of every record, with the length bytes between them (what a search's
    /// text filter reads).
    pub fn text(&self) -> &[u8] {
        &self.body
    }

    /// Calls `visit` with the records `order` names (indexes into `starts`, as
    /// [`OpenBlock::starts`] gave them), in that order, until it answers `Break`: a search
    /// reads, checks and copies only the records it picked.
    pub fn visit(
        &self,
        source: &str,
        starts: &[usize],
        order: impl Iterator<Item = u32>,
        mut visit: impl FnMut(u32, &RecordRef<'_>) -> ControlFlow<()>,
    ) -> Result<()> {
        for i in order {
            let start = *starts
                .get(i as usize)
                .ok_or_else(|| corrupt("record index"))?;
            let texts = Texts::read(&mut &self.body[start..])?;
            if visit(i, &self.record(i as usize, source, &texts)).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Calls `visit` with each record, newest first, until it answers `Break` (what a search
    /// does with the records it picked, through [`OpenBlock::visit`]; kept for the tests).
    #[cfg(test)]
    pub fn each_newest_first(
        &self,
        source: &str,
        visit: impl FnMut(u32, &RecordRef<'_>) -> ControlFlow<()>,
    ) -> Result<()> {
        let starts = self.starts()?;
        self.visit(source, &starts, (0..starts.len() as u32).rev(), visit)
    }

    fn record<'a>(&'a self, i: usize, source: &'a str, texts: &'a Texts<'a>) -> RecordRef<'a> {
        RecordRef {
            time: self.head.times[i],
            received: self.head.received[i],
            source,
            level: self.head.levels[i],
            level_raw: texts.level_raw,
            logger: texts.logger,
            message: texts.message,
            fields: &texts.fields,
            job_id: texts.job_id,
            trace_id: texts.trace_id,
            span_id: texts.span_id,
            flags: self.head.flags[i],
        }
    }
}

/// One record's texts, read in place (each string checked as UTF-8).
struct Texts<'a> {
    level_raw: &'a str,
    logger: &'a str,
    message: &'a str,
    job_id: &'a str,
    trace_id: &'a str,
    span_id: &'a str,
    fields: EncodedFields<'a>,
}

impl<'a> Texts<'a> {
    fn read(input: &mut &'a [u8]) -> Result<Texts<'a>> {
        Ok(Texts {
            level_raw: get_str(input)?,
            logger: get_str(input)?,
            message: get_str(input)?,
            job_id: get_str(input)?,
            trace_id: get_str(input)?,
            span_id: get_str(input)?,
            fields: EncodedFields::read(input)?,
        })
    }
}

/// A record's fields as the block holds them: `count` pairs of strings, checked when read.
struct EncodedFields<'a> {
    count: u64,
    bytes: &'a [u8],
}

impl<'a> EncodedFields<'a> {
    /// Reads past the fields at the front of `input`, checking each string.
    fn read(input: &mut &'a [u8]) -> Result<EncodedFields<'a>> {
        let count = get_varint(input)?;
        let bytes = *input;
        for _ in 0..count {
            get_str(input)?;
            get_str(input)?;
        }
        Ok(EncodedFields {
            count,
            bytes: &bytes[..bytes.len() - input.len()],
        })
    }
}

impl<'a> FieldList<'a> for EncodedFields<'a> {
    fn any(&'a self, visit: &mut dyn FnMut(&'a str, &'a str) -> bool) -> bool {
        let mut input = self.bytes;
        (0..self.count).any(|_| match (get_str(&mut input), get_str(&mut input)) {
            (Ok(name), Ok(value)) => visit(name, value),
            // Checked by `read`: cannot happen.
            _ => false,
        })
    }
}

/// Decodes every record; `source` fills in the block's source name.
pub fn decode(data: &[u8], source: &str) -> Result<Vec<LogRecord>> {
    let block = open(data)?;
    let mut out = Vec::with_capacity(block.head.times.len());
    block.each(source, |_, record| out.push(record.to_record()))?;
    Ok(out)
}

fn get_varint(input: &mut &[u8]) -> Result<u64> {
    varint::take(input).ok_or_else(|| corrupt("varint"))
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    varint::put(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn get_str<'a>(input: &mut &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(skip_str(input)?).map_err(|_| corrupt("string is not UTF-8"))
}

/// A string's bytes, not yet checked.
fn skip_str<'a>(input: &mut &'a [u8]) -> Result<&'a [u8]> {
    let len = get_varint(input)? as usize;
    if len > input.len() {
        return Err(corrupt("string length"));
    }
    let (text, rest) = input.split_at(len);
    *input = rest;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: i64) -> LogRecord {
        LogRecord {
            time: 1_700_000_000_000_000_000 + (i % 7) * 1_000_000 - i,
            received: 1_700_000_000_100_000_000 + i,
            source: "worker".into(),
            level: Level::ALL[(i % 7) as usize],
            level_raw: if i % 2 == 0 {
                "WARN".into()
            } else {
                vigie_core::Text::default()
            },
            logger: "invoices.send".into(),
            message: format!("sent invoice {i} to client-{}@example.org\nline two", i * 3).into(),
            fields: vec![
                ("attempt".into(), i.to_string().into()),
                ("ok".into(), "true".into()),
            ],
            job_id: if i % 3 == 0 {
                "nightly".into()
            } else {
                vigie_core::Text::default()
            },
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: vigie_core::Text::default(),
            flags: (i % 3) as u8,
        }
    }

    #[test]
    fn records_round_trip_sorted_by_time() {
        let mut records: Vec<_> = (0..1000).map(record).collect();
        let block = encode(&mut records.iter().collect::<Vec<_>>());
        records.sort_by_key(|r| r.time);
        assert_eq!(decode(&block.data, "worker").unwrap(), records);
        assert_eq!(block.records, 1000);
        assert_eq!(block.min_time, records[0].time);
        assert_eq!(block.max_time, records[999].time);
        assert_eq!(block.level_counts.iter().sum::<u32>(), 1000);
        assert_eq!(block.level_mask(), 0x7f);
        let head = decode_head(&block.data).unwrap();
        assert_eq!(head.times.len(), 1000);
        assert!(head.times.windows(2).all(|w| w[0] <= w[1]));
        assert!(
            (block.data.len() as u64) < block.raw_bytes / 4,
            "compresses: {} of {}",
            block.data.len(),
            block.raw_bytes
        );
    }

    #[test]
    fn records_read_in_place_newest_first_stop_when_asked() {
        let mut records: Vec<_> = (0..300).map(record).collect();
        let block = encode(&mut records.iter().collect::<Vec<_>>());
        records.sort_by_key(|r| r.time);
        let open = open(&block.data).unwrap();
        let mut oldest_first = Vec::new();
        open.each("worker", |i, r| oldest_first.push((i, r.to_record())))
            .unwrap();
        assert_eq!(
            oldest_first
                .iter()
                .map(|(_, r)| r.clone())
                .collect::<Vec<_>>(),
            records
        );
        let mut newest_first = Vec::new();
        open.each_newest_first("worker", |i, r| {
            newest_first.push((i, r.to_record()));
            if newest_first.len() == 7 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        let last_seven: Vec<_> = oldest_first.iter().rev().take(7).cloned().collect();
        assert_eq!(newest_first, last_seven);
        assert_eq!(newest_first[0].0, 299);
        // The records a search picks, and only those, in the order asked.
        let starts = open.starts().unwrap();
        assert_eq!(starts.len(), 300);
        let mut picked = Vec::new();
        open.visit("worker", &starts, [3, 150, 299].into_iter(), |i, r| {
            picked.push((i, r.to_record()));
            ControlFlow::Continue(())
        })
        .unwrap();
        let wanted: Vec<_> = [3, 150, 299].map(|i| oldest_first[i].clone()).into();
        assert_eq!(picked, wanted);
        let past_the_end = open.visit("worker", &starts, [300].into_iter(), |_, _| {
            ControlFlow::Continue(())
        });
        assert!(past_the_end.is_err());
        // A field read in place reads as stored.
        open.each("worker", |i, r| {
            assert_eq!(r.field("attempt"), records[i as usize].field("attempt"));
            assert_eq!(r.field("missing"), None);
        })
        .unwrap();
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let block = encode(&mut [&record(1), &record(2)]);
        for cut in [0, 3, 10, block.data.len() - 1] {
            assert!(decode(&block.data[..cut], "w").is_err(), "cut at {cut}");
        }
        let mut flipped = block.data.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0xff;
        let _ = decode(&flipped, "w");
        // Every byte of the body flipped in turn, read both ways: errors or records, never a
        // panic. (zstd may reject the frame; what it accepts is read with every length checked.)
        for at in 4..block.data.len() {
            let mut damaged = block.data.clone();
            damaged[at] ^= 0x5a;
            if let Ok(open) = open(&damaged) {
                let _ = open.each("w", |_, r| drop(r.to_record()));
                let _ = open.each_newest_first("w", |_, r| {
                    drop(r.to_record());
                    ControlFlow::Continue(())
                });
            }
        }
    }
}
