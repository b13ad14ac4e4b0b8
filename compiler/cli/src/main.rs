//! The `pulsec` binary.

fn main() -> std::process::ExitCode {
    pulsec::main_with_args(std::env::args_os())
}
