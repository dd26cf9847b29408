//! The `latchkey` binary: parse the command line and hand over to [`latchkey::cli`].

fn main() -> std::process::ExitCode {
    latchkey::cli::main()
}
