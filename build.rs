//! Release builds lay out the binary's code in the order of `.cargo/link-order.txt`: the
//! functions requests run (hottest first), then those only start-up runs, so that each sits in
//! a few contiguous megabytes. Left in the compiler's order they are spread over all 18 MB of
//! code, and since the kernel maps a file's pages 64 KB at a time around each one touched, a
//! node had 14 of its 18.5 MB of code resident when idle.
//!
//! The file lists symbol names as `bench/link_order.sh` records them by running the server;
//! names the build no longer has (code since changed) are skipped, and what is not listed
//! follows in the usual order, so a stale file costs memory, never correctness. The option is
//! LLD's (Rust's default linker for x86_64 Linux since 1.90); any other setup links as before.

use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.cargo/link-order.txt");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = env::var("TARGET").unwrap_or_default();
    if !release || target != "x86_64-unknown-linux-gnu" || !links_with_default_lld() {
        return;
    }
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let order = Path::new(&dir).join(".cargo/link-order.txt");
    if order.is_file() {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether the link uses the LLD that rustc 1.90 and later bring for this target: no linker of
/// the builder's own (`RUSTC_LINKER`, or one named in the flags), and a rustc that new.
fn links_with_default_lld() -> bool {
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if env::var_os("RUSTC_LINKER").is_some() || flags.contains("linker") || flags.contains("fuse-ld") {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let version = String::from_utf8_lossy(&out.stdout);
    let minor = version.split_whitespace().nth(1).and_then(|v| v.split('.').nth(1)?.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}
