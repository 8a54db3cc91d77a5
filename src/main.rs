//! The `deskmail` binary: everything lives in the library; see `deskmail::cli`.

/// mimalloc: a mail's way in and out allocates many small strings (headers, template values,
/// SQL arguments); glibc's allocator took a quarter of `deskmail ingest`'s time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (`mi_option_purge_delay` in mimalloc.h; libmimalloc-sys
/// names only its stable options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// What one mail may cost is bounded (see `inbound::bounds`), and so is the memory that shows
/// it: no transparent huge pages (a touched 4 KiB page of a fresh region grew the process by
/// 2 MiB) and freed memory handed back at once rather than after 10 ms. Side by side, 8 rounds
/// of `deskmail ingest` of 10,000 replies: 42 MB at peak instead of 78 MB, for 6 % more CPU
/// time. `MIMALLOC_PURGE_DELAY` in the environment wins.
fn bound_memory() {
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is allowed at any time; this one is read on each purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    }
}

fn main() -> std::process::ExitCode {
    // Like any Unix tool: when the reader of our output goes away (`deskmail ticket list | head`),
    // end quietly instead of panicking on a failed write.
    // SAFETY: restoring the default action of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    bound_memory();
    deskmail::cli::main()
}
