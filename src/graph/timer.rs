//! [`Timer`]: how the async loop waits (a `Retry-After`, a backoff, the end of an attempt's
//! time), reads the time and waits on a slow audit sink, whatever the runtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The clock and the waits of [`Graph::run`](crate::Graph::run). The default,
/// [`ThreadTimer`], needs no runtime; with the `driver` feature,
/// [`driver::TokioTimer`](crate::driver) uses tokio's clock (which tests can pause).
///
/// # Example: a timer of one's own
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::time::{Duration, Instant};
/// use recording_status::Timer;
///
/// /// Never waits: every retry goes at once (a test that does not care about pacing).
/// #[derive(Debug)]
/// struct Impatient;
///
/// impl Timer for Impatient {
///     fn now(&self) -> Instant {
///         Instant::now()
///     }
///     fn sleep(&self, _: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
///         Box::pin(std::future::ready(()))
///     }
/// }
/// ```
pub trait Timer: Send + Sync + fmt::Debug + 'static {
    /// Now, on this timer's clock.
    fn now(&self) -> Instant;

    /// Completes `duration` from now, on this timer's clock.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Runs `work` to its end: a step of the loop whose audit sink makes each write wait for
    /// its storage ([`AuditSink::blocks`](crate::audit::AuditSink::blocks): a sync to disk, a
    /// database's commit). The default runs it in place, blocking the thread meanwhile;
    /// [`driver::TokioTimer`](crate::driver) hands the thread's other tasks to another thread
    /// first (tokio's `block_in_place`), so that many calls wait on the sink at once, and the
    /// sink can write their events together (group commit).
    ///
    /// An implementation must call `work` exactly once, on this thread or another, and return
    /// once it has returned; one that never calls it gets it run in place afterwards.
    fn blocking(&self, work: &mut dyn FnMut()) {
        work();
    }
}

/// A [`Timer`] on the system clock whose waits are slept by a helper thread, one per wait
/// (waits are rare: a retry's pause, an attempt's time limit), so the async loop needs no
/// runtime. Dropping a wait lets its thread finish on its own.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ThreadTimer;

impl Timer for ThreadTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(ThreadSleep {
            until: Instant::now() + duration,
            shared: None,
        })
    }
}

struct ThreadSleep {
    until: Instant,
    /// Set once the helper thread runs: whether it is done, and whom to wake.
    shared: Option<Arc<Mutex<(bool, Waker)>>>,
}

impl Future for ThreadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.until {
            return Poll::Ready(());
        }
        if let Some(shared) = &self.shared {
            let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
            if state.0 {
                return Poll::Ready(());
            }
            state.1.clone_from(cx.waker());
            return Poll::Pending;
        }
        let shared = Arc::new(Mutex::new((false, cx.waker().clone())));
        let (until, wake) = (self.until, shared.clone());
        let spawned = std::thread::Builder::new()
            .name("recording-status-timer".to_owned())
            .spawn(move || {
                let now = Instant::now();
                if until > now {
                    std::thread::sleep(until - now);
                }
                let waker = {
                    let mut state = wake.lock().unwrap_or_else(PoisonError::into_inner);
                    state.0 = true;
                    state.1.clone()
                };
                waker.wake();
            });
        match spawned {
            Ok(_) => self.shared = Some(shared),
            // No thread to be had: poll again until the time has come (slow, never early).
            Err(_) => cx.waker().wake_by_ref(),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_timer_waits_at_least_its_duration() {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let started = Instant::now();
        let mut sleep = ThreadTimer.sleep(Duration::from_millis(30));
        while sleep.as_mut().poll(&mut cx).is_pending() {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(started.elapsed() >= Duration::from_millis(30));
        let mut zero = ThreadTimer.sleep(Duration::ZERO);
        assert!(zero.as_mut().poll(&mut cx).is_ready());
    }
}
