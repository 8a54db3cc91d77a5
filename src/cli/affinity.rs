//! Keeping a process on one CPU. sqlx talks to SQLite through a worker thread per connection,
//! a hand-off per statement; when the two threads sit on different CPUs every hand-off is a
//! cross-CPU wake-up, which on virtual machines costs more than the statement itself (`deskmail
//! ingest` on the project's 2-core VM: 1,300 mails/s spread over both CPUs, 2,800 on one).

/// Binds the calling thread, and the threads it starts from now on, to the CPU it runs on.
/// Returns that CPU, or `None` where that is not possible (it is only an optimisation).
pub fn stay_on_this_cpu() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sched_getcpu has no preconditions; the cpu_set_t is zeroed, sized and owned
        // here, and CPU_SET is given a CPU number the kernel just reported.
        unsafe {
            let cpu = libc::sched_getcpu();
            if cpu < 0 || cpu as usize >= libc::CPU_SETSIZE as usize {
                return None;
            }
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut set);
            (libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0)
                .then_some(cpu as usize)
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}
