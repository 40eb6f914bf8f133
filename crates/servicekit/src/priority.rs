//! The lowest priority a thread can have, for the work that must never
//! slow the pipeline: the routes' reads.
//!
//! Linux's idle scheduling class (`SCHED_IDLE`) runs a thread only on the
//! time other threads leave: one that wakes preempts it at once. Lowering
//! a thread's own policy needs no privilege, and threads it creates
//! inherit it.

/// Puts the calling thread in the idle scheduling class. Should it fail,
/// the thread runs at the usual priority, which is correct, only less kind
/// to the pipeline.
pub(crate) fn lower_this_thread_to_idle() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `sched_setscheduler` reads `param` and changes only the
    // calling thread's (pid 0) scheduling policy.
    let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &raw const param) };
    if result == -1 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "a thread meant for the routes' reads runs at the usual priority"
        );
    }
}

/// Whether the thread whose `/proc/.../stat` reads `stat` is in the idle
/// scheduling class (the `policy` field), for tests.
#[cfg(test)]
pub(crate) fn is_idle(stat: &str) -> bool {
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // Field 41 of `stat` (`policy`), counted from the state, field 3.
    fields.get(38).and_then(|policy| policy.parse::<i32>().ok()) == Some(libc::SCHED_IDLE)
}
