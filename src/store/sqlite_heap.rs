//! SQLite's heap. By default SQLite allocates with the C library's `malloc` and keeps
//! process-wide memory statistics, which take a global mutex on every allocation. deskmail
//! gives it mimalloc (the allocator the rest of the process already uses, see `main.rs`) and
//! turns the statistics off: nothing reads them (`sqlite3_memory_used` and the soft heap limit
//! are not used). Each stored mail costs SQLite a few hundred allocations; both changes make
//! them cheaper and change nothing else.
//!
//! SQLite accepts this only before its first connection opens, and the call must not race
//! with another thread using SQLite: [`configure`] runs once, from the first
//! [`super::Store::connect`] of the process, before that opens anything. If SQLite is already
//! in use (a program that opened a connection of its own first), SQLite refuses and keeps its
//! defaults, which is only slower.

use std::ffi::{c_int, c_void};
use std::sync::Once;

use libmimalloc_sys as mi;
use libsqlite3_sys as sqlite;

static CONFIGURE: Once = Once::new();

/// Hands SQLite mimalloc and turns its memory statistics off; only the first call does
/// anything.
pub(super) fn configure() {
    CONFIGURE.call_once(|| {
        let methods = sqlite::sqlite3_mem_methods {
            xMalloc: Some(malloc),
            xFree: Some(free),
            xRealloc: Some(realloc),
            xSize: Some(size),
            xRoundup: Some(roundup),
            xInit: Some(init),
            xShutdown: Some(shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: both options are valid before `sqlite3_initialize`, and SQLite checks that
        // it is not initialised yet (SQLITE_MISUSE otherwise). SQLite copies `methods`. The
        // variadic arguments have the types the options document: a pointer to
        // `sqlite3_mem_methods`, and an int.
        let (heap, stats) = unsafe {
            (
                sqlite::sqlite3_config(
                    sqlite::SQLITE_CONFIG_MALLOC,
                    &methods as *const sqlite::sqlite3_mem_methods,
                ),
                sqlite::sqlite3_config(sqlite::SQLITE_CONFIG_MEMSTATUS, 0 as c_int),
            )
        };
        if heap != sqlite::SQLITE_OK || stats != sqlite::SQLITE_OK {
            tracing::debug!(
                heap,
                stats,
                "SQLite was in use already; it keeps its own allocator"
            );
        }
    });
}

// SQLite asks for sizes as `int` and never for a negative one; mimalloc aligns to 16 bytes,
// SQLite needs 8.

unsafe extern "C" fn malloc(n: c_int) -> *mut c_void {
    // SAFETY: any size is valid; a failure is a null pointer, which SQLite handles.
    unsafe { mi::mi_malloc(n.max(0) as usize) }
}

unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: SQLite frees only what `malloc`/`realloc` above returned.
    unsafe { mi::mi_free(p) }
}

unsafe extern "C" fn realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SAFETY: as for `free`; SQLite keeps the old block when null is returned.
    unsafe { mi::mi_realloc(p, n.max(0) as usize) }
}

unsafe extern "C" fn size(p: *mut c_void) -> c_int {
    // SAFETY: `p` is null or a block from `malloc`/`realloc` above.
    let n = unsafe { mi::mi_usable_size(p) };
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn roundup(n: c_int) -> c_int {
    n.saturating_add(7) & !7
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    sqlite::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_allocates_through_mimalloc_once_configured() {
        configure();
        // SAFETY: plain calls into SQLite's allocator; the block is freed once.
        unsafe {
            let p = sqlite::sqlite3_malloc(100);
            assert!(!p.is_null());
            // The block is mimalloc's: mimalloc knows it, and SQLite reports mimalloc's
            // usable size (a multiple of 8, at least what was asked).
            assert!(mi::mi_is_in_heap_region(p));
            let usable = sqlite::sqlite3_msize(p);
            assert!(
                usable >= 100 && usable.is_multiple_of(8),
                "usable size {usable}"
            );
            sqlite::sqlite3_free(p);
            // Statistics are off: SQLite no longer counts what it holds.
            assert_eq!(sqlite::sqlite3_memory_used(), 0);
        }
    }
}
