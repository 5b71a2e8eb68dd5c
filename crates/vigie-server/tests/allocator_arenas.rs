//! `memory::cap_arenas` holds glibc to `memory::ARENAS` arenas however many threads allocate.
//!
//! Alone in its own test binary: arenas are per process and are never removed, so the cap
//! must come before any other test's thread has allocated.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::ffi::CString;
use vigie_server::memory::{cap_arenas, ARENAS};

/// The allocator's arenas, counted from `malloc_info`'s XML (one `<heap nr=` per arena).
fn arenas() -> usize {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("malloc_info.xml");
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: both strings are NUL-terminated CStrings that outlive the calls; the FILE* is
    // checked for null, used only by malloc_info on this thread, and closed exactly once.
    unsafe {
        let file = libc::fopen(c_path.as_ptr(), c"w".as_ptr());
        assert!(!file.is_null(), "cannot open {}", path.display());
        assert_eq!(libc::malloc_info(0, file), 0);
        libc::fclose(file);
    }
    std::fs::read_to_string(&path)
        .unwrap()
        .matches("<heap nr=")
        .count()
}

#[test]
fn threads_share_at_most_the_capped_arenas() {
    // glibc gives each new thread that allocates a new arena until its cap (8 per core by
    // default), so 32 threads would make 16 on 2 cores without the cap.
    assert!(
        std::env::var_os("MALLOC_ARENA_MAX").is_none(),
        "unset MALLOC_ARENA_MAX: it would decide in place of the cap under test"
    );
    cap_arenas();
    let start = std::sync::Arc::new(std::sync::Barrier::new(32));
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let blocks: Vec<Vec<u8>> = (0..1000).map(|n| vec![i as u8; 64 + n]).collect();
                start.wait();
                blocks.len()
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), 1000);
    }
    let seen = arenas();
    assert!(
        (2..=ARENAS as usize).contains(&seen),
        "{seen} arenas for 32 allocating threads, cap {ARENAS}"
    );
}
