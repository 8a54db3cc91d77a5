//! The `deskmail` binary: everything lives in the library; see `deskmail::cli`.

/// mimalloc: a mail's way in and out allocates many small strings (headers, template values,
/// SQL arguments); glibc's allocator took a quarter of `deskmail ingest`'s time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (`mi_option_purge_delay` in mimalloc.h; libmimalloc-sys
/// names only its stable options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory that deskmail frees is handed back to the system after 10 s unused instead of 1 s.
/// Under a steady stream of mail the default gave back pages that the next mails needed
/// again at once, and each came back as a fresh page the kernel had to zero: three times the
/// page faults, and 9 % more CPU time for `deskmail ingest` into PostgreSQL (medians of six
/// runs side by side). An idle daemon still shrinks. `MIMALLOC_PURGE_DELAY` in the
/// environment wins.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is allowed at any time; this one is read on each purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) }
    }
}

fn main() -> std::process::ExitCode {
    // Like any Unix tool: when the reader of our output goes away (`deskmail ticket list | head`),
    // end quietly instead of panicking on a failed write.
    // SAFETY: restoring the default action of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tune_allocator();
    deskmail::cli::main()
}
