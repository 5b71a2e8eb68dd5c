//! Lays out a release binary's code by use: the functions a start and an idle server run
//! (`code-order.txt`, written by `bench/code-order.py`) side by side at the front of `.text`.
//!
//! The kernel maps the 64 KiB around each page of the binary a process touches, and those
//! pages are its RSS; spread over the whole `.text`, the code a start touched made 13.5 of an
//! idle server's 22 MiB. Packed, it maps a few (BENCHMARKS.md, "Code laid out by use").
//!
//! The order is only a placement: the same functions, the same code. It is handed to the
//! linker only where the linker is known to take it — a release build for x86-64 Linux with
//! Rust's own LLD, the default linker there since Rust 1.90 — and `VIGIE_CODE_ORDER=off`
//! turns it off. A name the binary does not have (after a toolchain or dependency upgrade) is
//! skipped by the linker without a word; `bench/code-order.py BINARY --check` counts them.
//!
//! Packed relative relocations (`-z pack-relative-relocs`) were tried beside it and left out:
//! 0.6 MiB less idle RSS, a start no faster (the loader's relocation work was 0.06 ms), and a
//! binary that no longer loads on glibc older than 2.36, such as Ubuntu 22.04's
//! (BENCHMARKS.md, "Packed relocations, tried").

use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=code-order.txt");
    println!("cargo:rerun-if-env-changed=VIGIE_CODE_ORDER");
    if let Some(order) = order_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// The ordering file, when this build's linker is Rust's LLD and nobody said otherwise.
fn order_file() -> Option<std::path::PathBuf> {
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("VIGIE_CODE_ORDER") == "off"
        || var("PROFILE") != "release"
        || var("TARGET") != "x86_64-unknown-linux-gnu"
    {
        return None;
    }
    // A linker of the user's choice may not know the option: leave it alone.
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if flags.contains("linker") || flags.contains("link-self-contained") {
        return None;
    }
    if env::vars().any(|(name, _)| name.starts_with("CARGO_TARGET_") && name.ends_with("_LINKER")) {
        return None;
    }
    if rustc_minor_version()? < 90 {
        return None;
    }
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join("code-order.txt");
    order.is_file().then_some(order)
}

/// The `N` of the compiler's `1.N.x`.
fn rustc_minor_version() -> Option<u32> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc).arg("--version").output().ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    version
        .split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}
