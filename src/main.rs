//! The `deskmail` binary: everything lives in the library; see `deskmail::cli`.

/// mimalloc: a mail's way in and out allocates many small strings (headers, template values,
/// SQL arguments); glibc's allocator took a quarter of `deskmail ingest`'s time. Its default
/// purge delay gives freed memory back soon: a large mail's buffers do not linger.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Like any Unix tool: when the reader of our output goes away (`deskmail ticket list | head`),
    // end quietly instead of panicking on a failed write.
    // SAFETY: restoring the default action of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    deskmail::cli::main()
}
