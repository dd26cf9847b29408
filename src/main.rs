//! The `latchkey` binary: parse the command line and hand over to [`latchkey::cli`].

/// mimalloc rather than the system allocator: per-thread heaps without glibc's arena locks,
/// which cost a request a tenth of its CPU under load, and memory given back when freed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    latchkey::cli::main()
}
