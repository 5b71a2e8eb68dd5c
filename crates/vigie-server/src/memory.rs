//! Giving memory back to the system once a burst is over.
//!
//! glibc's allocator keeps what a program frees in its arenas (one per thread that allocated
//! under contention) for reuse, and returns only the free top of the main heap by itself. After
//! a burst — thousands of requests at once, each holding its body and parse — the arenas stay
//! grown: Vigie kept hundreds of MiB resident that it no longer used. `malloc_trim(0)` hands
//! every arena's free pages back. The maintenance loop calls [`give_back`] every
//! [`GIVE_BACK_EVERY`]; on a small heap it costs microseconds, on a large one a few
//! milliseconds, and pages are faulted back in only if a new burst needs them.
//!
//! Each arena also keeps its own free pages between bursts, so the more arenas, the more memory
//! is resident but unused at the peak of one. glibc makes up to 8 per core; [`cap_arenas`]
//! allows [`ARENAS`]. With 36 hostile requests at once (the bombs test in
//! `crates/vigie/tests/reliability.rs`) the peak went from 228–289 MiB to 171–207 MiB, with no
//! change in CPU per event, transaction or log line (`vigie-bench regress`, BENCHMARKS.md).
//!
//! mimalloc and jemalloc were the alternatives: mimalloc was measured to keep 3× the RSS after
//! a run (BENCHMARKS.md), and jemalloc would add a C build for what one call does here.

use std::time::Duration;

pub const GIVE_BACK_EVERY: Duration = Duration::from_secs(10);

/// The most allocator arenas Vigie's threads share (glibc's own cap is 8 per core).
pub const ARENAS: i32 = 4;

/// Caps the allocator's arenas at [`ARENAS`], unless `MALLOC_ARENA_MAX` in the environment
/// already chose (glibc reads it itself). Call it first thing, before any thread starts.
pub fn cap_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        set_arena_max(ARENAS);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(arenas: i32) {
    // SAFETY: `mallopt` is glibc's (this cfg) and takes two plain integers; M_ARENA_MAX only
    // limits how many arenas future allocations may create, under the allocator's own lock,
    // and touches no memory a Rust value holds.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) {}

/// Returns the allocator's free memory to the system; says what the RSS went to.
pub fn give_back() -> Result<String, String> {
    let before = resident_kib();
    trim();
    Ok(match (before, resident_kib()) {
        (Some(b), Some(a)) => format!(
            "resident {} MiB (returned {} MiB)",
            a / 1024,
            b.saturating_sub(a) / 1024
        ),
        _ => "free memory returned".into(),
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: `malloc_trim` is glibc's (this cfg), takes a plain size, and only walks and
    // releases the allocator's own free chunks under the allocator's locks; it is thread-safe
    // and frees no memory that is in use, so no Rust value can be affected.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// This process's resident memory, from `/proc/self/status` (Linux).
fn resident_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn free_memory_between_live_blocks_goes_back() {
        // 120 MiB in 40 KiB blocks (below the size glibc maps on its own), one in 16 kept
        // alive: the free space lies between live blocks, where the allocator never trims by
        // itself.
        let mut blocks: Vec<Vec<u8>> = (0..3000).map(|i| vec![i as u8; 40 << 10]).collect();
        let kept: Vec<Vec<u8>> = blocks.iter_mut().step_by(16).map(std::mem::take).collect();
        drop(blocks);
        let before = resident_kib().unwrap();
        trim();
        let after = resident_kib().unwrap();
        assert!(
            before.saturating_sub(after) > 50 << 10,
            "returned {} KiB of ~110 MiB free",
            before.saturating_sub(after)
        );
        assert_eq!(
            kept.iter().map(|b| b.len()).sum::<usize>(),
            188 * (40 << 10)
        );
    }
}
