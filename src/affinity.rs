//! Keeping a process on one CPU. sqlx talks to SQLite through a worker thread per connection,
//! a hand-off per statement; when the two threads sit on different CPUs every hand-off is a
//! cross-CPU wake-up, which on virtual machines costs more than the statement itself (`deskmail
//! ingest` on the project's 2-core VM: 1,300 mails/s spread over both CPUs, 2,800 on one). The
//! work that needs no database (parsing, classifying, extracting) runs on a helper thread on the
//! other CPUs.
//!
//! The pinned threads also run as a batch job (`SCHED_BATCH`): a thread woken by the other
//! does not take the CPU from it at once, so a hand-off costs one switch instead of two when
//! the woken thread would only have waited again (about 4 % more mails per second).

#[cfg(target_os = "linux")]
mod imp {
    use std::sync::OnceLock;

    /// The CPUs the process had before, and the one it stays on.
    static PINNED: OnceLock<(libc::cpu_set_t, usize)> = OnceLock::new();

    fn current() -> Option<libc::cpu_set_t> {
        // SAFETY: sched_getaffinity fills a zeroed cpu_set_t of the size it is given.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            (libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0)
                .then_some(set)
        }
    }

    fn apply(set: &libc::cpu_set_t) -> bool {
        // SAFETY: sched_setaffinity reads a cpu_set_t of the size it is given.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) == 0 }
    }

    pub fn stay_on_this_cpu() -> Option<usize> {
        let before = current()?;
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu < 0 || cpu as usize >= libc::CPU_SETSIZE as usize {
            return None;
        }
        let cpu = cpu as usize;
        // SAFETY: a zeroed cpu_set_t, and a CPU number within CPU_SETSIZE.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(cpu, &mut one) };
        if !apply(&one) {
            return None;
        }
        let _ = PINNED.set((before, cpu));
        let batch = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler reads the sched_param it is given. Failing leaves the
        // policy as it was, which is only slower.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &batch) };
        Some(cpu)
    }

    pub fn leave_the_pinned_cpu() {
        let Some((before, cpu)) = PINNED.get() else {
            return;
        };
        let mut others = *before;
        // SAFETY: the CPU number came from sched_getcpu and is within CPU_SETSIZE.
        unsafe { libc::CPU_CLR(*cpu, &mut others) };
        // SAFETY: CPU_COUNT reads the set.
        if unsafe { libc::CPU_COUNT(&others) } > 0 {
            apply(&others);
        }
    }
}

/// Binds the calling thread, and the threads it starts from now on, to the CPU it runs on, as a
/// batch job (`SCHED_BATCH`). Returns that CPU, or `None` where that is not possible (it is only an optimisation).
pub fn stay_on_this_cpu() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        imp::stay_on_this_cpu()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// For a helper thread: the process's other CPUs, when it has any (see [`stay_on_this_cpu`]).
pub fn leave_the_pinned_cpu() {
    #[cfg(target_os = "linux")]
    imp::leave_the_pinned_cpu();
}
