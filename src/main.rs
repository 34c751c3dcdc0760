//! The `abdoseg` command: serves the four services and talks to them.

fn main() -> std::process::ExitCode {
    abdoseg::cli::run()
}
