//! Turns: one status request in flight per call, served in arrival order, so that the trail
//! holds each request's answer before the call's next request.

use std::sync::Arc;

use crate::types::CallId;

/// Per-call turns: one status request in flight per call, served in arrival order.
#[derive(Default)]
pub(crate) struct Turns {
    calls: std::sync::Mutex<Locks>,
}

/// The calls' locks, keyed by [`CallId`] (a reference-counted clone, compared by its
/// normalised form). Locks nobody holds or waits for are swept out once the map has doubled
/// since the last sweep, so it stays within twice the calls with requests in flight (and
/// [`Locks::SWEEP_MIN`]); swept locks are kept, up to [`Locks::SPARE`], for calls to come. A
/// lock nobody holds is unlocked, so keeping or reusing it is the same as making a new one, and
/// a request costs no allocation once the map has grown.
#[derive(Default)]
struct Locks {
    map: std::collections::HashMap<CallId, Arc<tokio::sync::Mutex<()>>>,
    spare: Vec<Arc<tokio::sync::Mutex<()>>>,
    /// Sweep when the map holds this many.
    sweep_at: usize,
}

impl Locks {
    const SWEEP_MIN: usize = 64;
    const SPARE: usize = 64;

    fn sweep(&mut self) {
        let spare = &mut self.spare;
        self.map.retain(|_, lock| {
            if Arc::strong_count(lock) > 1 {
                return true;
            }
            if spare.len() < Self::SPARE {
                spare.push(lock.clone());
            }
            false
        });
        self.sweep_at = (self.map.len() * 2).max(Self::SWEEP_MIN);
    }
}

impl Turns {
    /// Waits for `call`'s turn: held until the guard is dropped.
    pub(crate) async fn take(&self, call: &CallId) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .calls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if locks.map.len() >= locks.sweep_at {
                locks.sweep();
            }
            match locks.map.get(call) {
                Some(lock) => lock.clone(),
                None => {
                    let lock = locks.spare.pop().unwrap_or_default();
                    locks.map.insert(call.clone(), lock.clone());
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// How many locks the map holds (tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> CallId {
        CallId::new(format!("call-{n}")).unwrap()
    }

    #[tokio::test]
    async fn a_held_lock_survives_sweeps_and_is_shared_by_every_spelling() {
        let in_flight = Turns::default();
        let held = in_flight.take(&CallId::new("AB-CD").unwrap()).await;
        // Enough other calls to sweep several times.
        for n in 0..10 * Locks::SWEEP_MIN {
            drop(in_flight.take(&id(n)).await);
        }
        let other_spelling = CallId::new("abcd").unwrap();
        let again = in_flight.take(&other_spelling);
        tokio::pin!(again);
        assert!(
            futures_poll_once(again.as_mut()).is_none(),
            "a second request for the call must wait for the first"
        );
        drop(held);
        assert!(futures_poll_once(again.as_mut()).is_some());
    }

    #[tokio::test]
    async fn the_map_stays_bounded() {
        let in_flight = Turns::default();
        for n in 0..10_000 {
            drop(in_flight.take(&id(n)).await);
            assert!(in_flight.held() <= Locks::SWEEP_MIN, "{}", in_flight.held());
        }
        let ids: Vec<_> = (0..300).map(id).collect();
        let mut guards = Vec::new();
        for call in &ids {
            guards.push(in_flight.take(call).await);
        }
        assert!(in_flight.held() <= 2 * 300 + Locks::SWEEP_MIN);
        drop(guards);
        for n in 0..1_000 {
            drop(in_flight.take(&id(n)).await);
        }
        assert!(in_flight.held() <= 2 * 300);
    }

    fn futures_poll_once<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        match f.poll(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
