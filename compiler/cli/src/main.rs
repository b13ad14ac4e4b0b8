//! The `pulsec` binary.

fn main() -> std::process::ExitCode {
    // A closed stdout (`pulsec check ... | head -1`) ends the process quietly, as for any filter.
    sigpipe::reset();
    pulsec::main_with_args(std::env::args_os())
}
