//! The `deskmail` binary: everything lives in the library; see `deskmail::cli`.

fn main() -> std::process::ExitCode {
    deskmail::cli::main()
}
