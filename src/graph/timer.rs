//! [`Timer`]: how the async loop waits (a `Retry-After`, a backoff, the end of an attempt's
//! time), reads the time and waits on a slow audit sink, whatever the runtime.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
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

/// A [`Timer`] on the system clock whose waits are slept by one helper thread for the whole
/// process (started at the first wait), so the async loop needs no runtime. A wait that is
/// dropped (an attempt's time limit, once the answer came) is forgotten at once.
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
            key: None,
            waker: None,
        })
    }
}

/// The waits of every [`ThreadTimer`], by deadline, and the thread that sleeps them.
struct Wheel {
    waits: Mutex<Waits>,
    /// The thread waits here for the earliest deadline, or for an earlier one to come.
    changed: Condvar,
}

#[derive(Default)]
struct Waits {
    /// Each wait's deadline and number, and whom to wake then.
    by_time: BTreeMap<(Instant, u64), Waker>,
    next: u64,
    /// Whether the thread runs (`None`: not tried yet; `Some(false)`: it could not start).
    thread: Option<bool>,
}

static WHEEL: Wheel = Wheel {
    waits: Mutex::new(Waits {
        by_time: BTreeMap::new(),
        next: 0,
        thread: None,
    }),
    changed: Condvar::new(),
};

impl Wheel {
    fn waits(&self) -> MutexGuard<'_, Waits> {
        self.waits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread: wakes each wait at its deadline.
    fn run(&self) {
        let mut waits = self.waits();
        loop {
            let now = Instant::now();
            let due: Vec<Waker> = {
                let later = waits.by_time.split_off(&(now, u64::MAX));
                std::mem::replace(&mut waits.by_time, later)
                    .into_values()
                    .collect()
            };
            if !due.is_empty() {
                drop(waits);
                due.into_iter().for_each(Waker::wake);
                waits = self.waits();
                continue;
            }
            waits = match waits.by_time.keys().next() {
                Some(&(first, _)) => {
                    self.changed
                        .wait_timeout(waits, first.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .changed
                    .wait(waits)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

struct ThreadSleep {
    until: Instant,
    /// Its place among the wheel's waits, once polled.
    key: Option<(Instant, u64)>,
    /// The waker the wheel holds for it, to skip the wheel's lock when it has not changed.
    waker: Option<Waker>,
}

impl Future for ThreadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.until {
            return Poll::Ready(());
        }
        if self
            .waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            // Registered with this waker already (a task polls all it awaits when it wakes).
            return Poll::Pending;
        }
        let mut waits = WHEEL.waits();
        if waits.thread.is_none() {
            let started = std::thread::Builder::new()
                .name("recording-status-timer".to_owned())
                .spawn(|| WHEEL.run())
                .is_ok();
            waits.thread = Some(started);
        }
        if waits.thread == Some(false) {
            // No thread to be had: poll again until the time has come (slow, never early).
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match self.key {
            Some(key) => {
                if let Some(waker) = waits.by_time.get_mut(&key) {
                    waker.clone_from(cx.waker());
                }
            }
            None => {
                waits.next += 1;
                let key = (self.until, waits.next);
                let earliest = waits.by_time.keys().next().is_none_or(|first| key < *first);
                waits.by_time.insert(key, cx.waker().clone());
                if earliest {
                    // The thread must wait less than it does.
                    WHEEL.changed.notify_one();
                }
                self.key = Some(key);
            }
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for ThreadSleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            WHEEL.waits().by_time.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timer's threads in this process (Linux: a thread's name, cut to 15 bytes, is in
    /// `/proc/self/task/*/comm`); other tests' threads do not count.
    fn timer_threads() -> Option<usize> {
        let tasks = std::fs::read_dir("/proc/self/task").ok()?;
        Some(
            tasks
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .filter(|name| "recording-status-timer".starts_with(name.trim_end()))
                .count(),
        )
    }

    /// Before: each wait polled once spawned a thread that slept its whole duration, even once
    /// the wait was dropped. An attempt's time limit is such a wait, so a bot making calls at
    /// 64 in flight with a retry policy (a deadline of a minute) kept thousands of sleeping
    /// threads, until thread creation failed and the process aborted.
    #[test]
    fn waits_dropped_early_leave_no_thread_behind() {
        if timer_threads().is_none() {
            return;
        }
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..300 {
            let mut attempt_limit = ThreadTimer.sleep(Duration::from_secs(60));
            assert!(attempt_limit.as_mut().poll(&mut cx).is_pending());
            // The answer came first: the limit is dropped.
        }
        let left = timer_threads().unwrap_or_default();
        assert!(left <= 1, "{left} timer threads after 300 dropped waits");
    }

    #[test]
    fn many_waits_end_each_at_its_time() {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let started = Instant::now();
        let mut waits: Vec<_> = [40u64, 10, 30, 20, 0]
            .into_iter()
            .map(|ms| (ms, ThreadTimer.sleep(Duration::from_millis(ms))))
            .collect();
        let mut ended = Vec::new();
        while !waits.is_empty() {
            waits.retain_mut(|(ms, wait)| {
                if wait.as_mut().poll(&mut cx).is_ready() {
                    assert!(started.elapsed() >= Duration::from_millis(*ms));
                    ended.push(*ms);
                    false
                } else {
                    true
                }
            });
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(ended, [0, 10, 20, 30, 40]);
    }

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
