//! The runtime the plugin serves on, and the one way off it for work that holds a CPU.

use std::sync::LazyLock;

use tokio::runtime::{Builder, Runtime};
use tokio::sync::Semaphore;

use crate::logging::LogOutput;

/// Builds the runtime: tokio's single-threaded one for `threads == 1`, else a multi-threaded
/// one with `threads` workers (`0`: one per CPU). Log lines below warn wait until a thread has
/// nothing left to do.
pub(super) fn build(threads: usize, log: &LogOutput) -> std::io::Result<Runtime> {
    let mut builder = match threads {
        1 => Builder::new_current_thread(),
        _ => Builder::new_multi_thread(),
    };
    if threads > 1 {
        builder.worker_threads(threads);
    }
    builder
        .enable_all()
        .on_thread_park({
            let log = log.clone();
            move || log.flush()
        })
        .build()
}

/// Runs CPU-heavy `work` (a password hash, a key derivation) on tokio's blocking pool, at most
/// one job per CPU at a time, and waits for it without holding a runtime thread.
///
/// On the runtime's own threads such work would stop everything else meanwhile: on the default
/// single thread every other request of every mount; on several workers too, as a worker busy
/// with it no longer polls the sockets (measured with `static-auth`: two concurrent logins on
/// two workers went 1.1 times as fast as on one). The bound matters where the work needs no
/// token, as a login does: a flood of requests queues here instead of starting hundreds of
/// threads.
///
/// ```
/// # async fn example() -> Result<(), vault_plugin_sdk::backend::Error> {
/// use vault_plugin_sdk::cpu_bound;
///
/// let digest = cpu_bound(|| (0..1_000_000u64).fold(0u64, |a, b| a.wrapping_add(b * b))).await?;
/// # let _ = digest;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// An internal error, with the panic as its cause, if `work` panics.
pub async fn cpu_bound<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, crate::backend::Error> {
    static JOBS: LazyLock<Semaphore> = LazyLock::new(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
    });
    // The semaphore is static and never closed, so acquiring cannot fail.
    let _permit = JOBS.acquire().await.ok();
    tokio::task::spawn_blocking(work).await.map_err(|error| {
        crate::backend::Error::internal("a CPU-bound job did not finish").with_source(error)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn jobs_run_at_most_one_per_cpu_at_a_time_off_the_runtime_thread() {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let runtime_thread = std::thread::current().id();
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..4 * cpus + 4 {
            let (running, most) = (running.clone(), most.clone());
            jobs.spawn(cpu_bound(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Long enough that unbounded jobs would overlap.
                std::thread::sleep(std::time::Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                std::thread::current().id()
            }));
        }
        while let Some(done) = jobs.join_next().await {
            assert_ne!(done.unwrap().unwrap(), runtime_thread);
        }
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=cpus).contains(&most),
            "{most} jobs at once on {cpus} CPUs"
        );
    }

    #[tokio::test]
    async fn a_job_that_panics_is_an_internal_error_with_the_panic_as_its_cause() {
        let error = cpu_bound::<()>(|| panic!("boom")).await.unwrap_err();
        assert_eq!(error.kind(), crate::backend::ErrorKind::Internal);
        assert_eq!(error.message(), "a CPU-bound job did not finish");
        let cause = std::error::Error::source(&error).unwrap();
        assert!(
            cause
                .downcast_ref::<tokio::task::JoinError>()
                .unwrap()
                .is_panic()
        );
    }
}
