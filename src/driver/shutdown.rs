//! Stopping an instance: [`Driver::shutdown`] refuses new begins, stops every recording call,
//! gives up on what Graph has not settled by its deadline and reports it `failed`, audits the
//! stop and syncs the trail.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Driver;
use crate::audit::{AuditEvent, AuditKind};
use crate::error::{AuditError, Error};
use crate::seam::{CallEntry, RetentionShared, entry, recordings, report};
use crate::status::RecordingStatus;
use crate::transport::Transport;
use crate::types::CallId;

/// What [`Driver::shutdown`] did. Every figure is also in the trail's `instance_stopped` event.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Recording calls the shutdown stopped (stop signal, drain, revocation) whose
    /// `notRecording` Graph acknowledged.
    pub stopped: usize,
    /// `recording` requests the instance could not settle (pending at the deadline, or with
    /// their outcome unknown) whose `failed` Graph acknowledged.
    pub failed: usize,
    /// Reports that were not sent, or that Graph did not acknowledge, with why. Graph may
    /// still show these calls `recording`.
    pub unreported: Vec<Unreported>,
    /// The bot's own operations (begins, stops, reports) still running when the shutdown
    /// returned; 0 when everything settled in time.
    pub unsettled: usize,
    /// Why the stop could not be audited or the trail synced, if so.
    pub trail: Option<Arc<AuditError>>,
}

impl ShutdownReport {
    /// Whether everything was stopped, settled and reported, and the trail synced.
    pub fn is_clean(&self) -> bool {
        self.unreported.is_empty() && self.unsettled == 0 && self.trail.is_none()
    }
}

/// A report [`Driver::shutdown`] or [`Driver::recover`] could not have acknowledged (see
/// [`ShutdownReport::unreported`], [`Recovery::unreported`](super::Recovery::unreported)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Unreported {
    /// The call.
    pub call_id: CallId,
    /// The status the report was to send.
    pub status: RecordingStatus,
    /// Why it was not acknowledged.
    pub error: Arc<Error>,
}

/// Whether the driver is stopping, and what of it still runs.
pub(super) struct Life {
    /// Set when a shutdown starts: begins are refused from then on.
    closing: AtomicBool,
    /// The bot's operations under way (begins, stops, reports, orphan reports).
    active: AtomicUsize,
    /// Woken when `active` drops to 0.
    idle: Notify,
    /// When pending begins give up waiting, once a shutdown has started.
    deadline: watch::Sender<Option<Instant>>,
    /// Whether a shutdown was started (the first call starts it; later ones wait for it).
    started: AtomicBool,
    /// The shutdown's report, once it is done.
    report: watch::Sender<Option<ShutdownReport>>,
    /// Calls whose stop is under way: the bot's, released when its stop returns, or the
    /// shutdown's, kept. One of them stops a call, never both.
    stopping: Mutex<HashSet<CallId>>,
}

impl Default for Life {
    fn default() -> Self {
        Self {
            closing: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            idle: Notify::new(),
            deadline: watch::Sender::new(None),
            started: AtomicBool::new(false),
            report: watch::Sender::new(None),
            stopping: Mutex::new(HashSet::new()),
        }
    }
}

/// One of the bot's operations, under way until dropped.
pub(super) struct Active<'l>(&'l Life);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// The bot's claim on stopping one call, released when dropped.
pub(super) struct StopClaim<'l> {
    life: &'l Life,
    call: CallId,
}

impl Drop for StopClaim<'_> {
    fn drop(&mut self) {
        self.life.lock_stopping().remove(&self.call);
    }
}

impl Life {
    /// An operation of the bot starts. Counted before [`is_closing`](Self::is_closing) is
    /// read, so that a shutdown either refuses it or waits for it.
    pub(super) fn enter(&self) -> Active<'_> {
        self.enter_detached();
        Active(self)
    }

    /// An operation starts that a guard of its own will end with [`leave`](Self::leave).
    pub(super) fn enter_detached(&self) {
        self.active.fetch_add(1, Ordering::SeqCst);
    }

    /// An operation ended.
    pub(super) fn leave(&self) {
        if self.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    pub(super) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// When pending begins must give up: `None` until a shutdown starts.
    pub(super) fn deadline(&self) -> watch::Receiver<Option<Instant>> {
        self.deadline.subscribe()
    }

    /// The bot stops `call`; `None` if the shutdown has taken it.
    pub(super) fn claim_stop(&self, call: &CallId) -> Option<StopClaim<'_>> {
        self.lock_stopping()
            .insert(call.clone())
            .then(|| StopClaim {
                life: self,
                call: call.clone(),
            })
    }

    /// The shutdown takes `call` for good; `false` if the bot is stopping it.
    fn claim_for_shutdown(&self, call: &CallId) -> bool {
        self.lock_stopping().insert(call.clone())
    }

    fn lock_stopping(&self) -> MutexGuard<'_, HashSet<CallId>> {
        self.stopping.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no operation of the bot is under way, or `limit`. Whether none is.
    async fn idle_by(&self, limit: Instant) -> bool {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.active.load(Ordering::SeqCst) == 0 {
                return true;
            }
            tokio::select! {
                () = idle => {}
                () = tokio::time::sleep_until(limit) => {
                    return self.active.load(Ordering::SeqCst) == 0;
                }
            }
        }
    }
}

impl<T: Transport + 'static> Driver<T> {
    /// Stops this instance, for a process about to exit (wire it to Ctrl-C and `SIGTERM`):
    ///
    /// 1. from now on [`begin_recording`](Self::begin_recording) is refused with
    ///    [`Error::ShuttingDown`], sending nothing;
    /// 2. every call recording now (whatever holds its value) is stopped as
    ///    [`stop_recording`](Self::stop_recording) stops one: the stop signal is raised and
    ///    audited, its capabilities have until `deadline` to end, then its retention is
    ///    revoked (no write in flight, none can start: G8) and `notRecording` is reported.
    ///    The call is then ended for the driver: the bot's `stop_recording` of its value
    ///    returns [`StopError::StillRecording`](crate::StopError::StillRecording) with
    ///    [`Error::ShuttingDown`]; drop or [`end`](Self::end) it. A call the bot is stopping
    ///    itself is left to that stop;
    /// 3. a begin waiting for Graph's notification gives up at `deadline` (as at
    ///    [`DriverConfig::pending_deadline`](super::DriverConfig::pending_deadline): the call
    ///    fails, and `failed` is reported); a call that begins recording meanwhile is stopped
    ///    as in 2;
    /// 4. every `recording` request whose outcome is unknown (given up, dropped, or not
    ///    answered) is reported `failed`, so that Graph shows no recording the instance will
    ///    not store;
    /// 5. the stop is audited (`instance_stopped`) and the trail synced
    ///    ([`AuditSink::sync`](crate::audit::AuditSink::sync)).
    ///
    /// # Time
    /// Returns within `deadline` plus twice the retry policy's
    /// [`report_grace`](crate::RetryPolicy::report_grace): the reports of step 2 and 3 have
    /// until `deadline` plus one grace, those of step 4 one grace more. What is not settled
    /// by then is in the report ([`ShutdownReport::unsettled`],
    /// [`ShutdownReport::unreported`]).
    ///
    /// # Cancellation and repeated calls
    /// The shutdown runs in a task of its own on the current tokio runtime: dropping this
    /// future does not stop it. Every call, during or after it, waits for the same shutdown
    /// and returns a copy of the same report; the first call's `deadline` is the one used.
    ///
    /// # Example
    /// ```no_run
    /// # async fn f(driver: recording_status::driver::Driver<recording_status::testing::ScriptedTransport>) {
    /// use std::time::Duration;
    ///
    /// tokio::signal::ctrl_c().await.ok();
    /// let report = driver.shutdown(Duration::from_secs(10)).await;
    /// if !report.is_clean() {
    ///     eprintln!("stopped with loose ends: {report:?}");
    /// }
    /// # }
    /// ```
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let life = &self.inner.life;
        let mut done = life.report.subscribe();
        if !life.started.swap(true, Ordering::SeqCst) {
            let driver = self.clone();
            let deadline = Instant::now() + deadline;
            tokio::spawn(async move {
                let report = driver.shut_down(deadline).await;
                driver.inner.life.report.send_replace(Some(report));
            });
        }
        // The sender lives as long as the driver this borrows, so the wait ends with the report.
        done.wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|report| report.clone())
            .unwrap_or_default()
    }

    async fn shut_down(&self, deadline: Instant) -> ShutdownReport {
        let life = &self.inner.life;
        life.closing.store(true, Ordering::SeqCst);
        life.deadline.send_replace(Some(deadline));
        let grace = self.inner.config.retry.report_grace;
        let limit = deadline + grace;
        tracing::info!(
            recording = recordings(&self.inner.calls).len(),
            "instance stopping"
        );
        let mut outcome = ShutdownReport::default();
        loop {
            let mut stops = JoinSet::new();
            for (entry, retention) in recordings(&self.inner.calls) {
                if self.inner.hub.has_ended(retention.call_id())
                    || !life.claim_for_shutdown(retention.call_id())
                {
                    continue;
                }
                let driver = self.clone();
                stops
                    .spawn(async move { driver.stop_one(entry, retention, deadline, limit).await });
            }
            while let Some(stopped) = stops.join_next().await {
                match stopped {
                    Ok(Ok(())) => outcome.stopped += 1,
                    Ok(Err(unreported)) => outcome.unreported.push(unreported),
                    Err(e) => tracing::error!(error = %e, "a call's shutdown task failed"),
                }
            }
            // Begins and stops under way settle, and may leave a call recording: stop it too.
            let idle = life.idle_by(limit).await;
            let left = recordings(&self.inner.calls)
                .iter()
                .any(|(_, r)| !self.inner.hub.has_ended(r.call_id()));
            if !left || !idle || Instant::now() >= limit {
                break;
            }
        }
        // A report of step 4 has at least one grace, even when the steps before used theirs.
        let limit = limit.max(Instant::now() + grace);
        let mut reports = JoinSet::new();
        for (call, episode) in self.inner.hub.take_abandoned() {
            let driver = self.clone();
            reports.spawn(async move {
                let entry = entry(&driver.inner.calls, &call);
                let update = report(&call, RecordingStatus::Failed, entry, episode);
                let sent = tokio::time::timeout_at(limit, driver.run(update)).await;
                (call, sent.unwrap_or(Err(Error::Timeout)))
            });
        }
        while let Some(reported) = reports.join_next().await {
            match reported {
                Ok((_, Ok(()))) => outcome.failed += 1,
                // A later episode decides what Graph shows: nothing to report for this one.
                Ok((_, Err(Error::Superseded { .. }))) => {}
                Ok((call_id, Err(e))) => outcome.unreported.push(Unreported {
                    call_id,
                    status: RecordingStatus::Failed,
                    error: Arc::new(e),
                }),
                Err(e) => tracing::error!(error = %e, "a shutdown report task failed"),
            }
        }
        outcome.unsettled = life.active.load(Ordering::SeqCst);
        let stopped = AuditEvent::now(
            "",
            AuditKind::InstanceStopped {
                stopped: outcome.stopped as u64,
                failed: outcome.failed as u64,
                unreported: outcome.unreported.len() as u64,
                unsettled: outcome.unsettled as u64,
            },
        );
        let audit = self.inner.calls.audit();
        if let Err(e) = audit.record(&stopped).and_then(|()| audit.sync()) {
            tracing::error!(error = %e, "the instance's stop could not be audited or the trail synced");
            outcome.trail = Some(Arc::new(e));
        }
        tracing::info!(
            stopped = outcome.stopped,
            failed = outcome.failed,
            unreported = outcome.unreported.len(),
            unsettled = outcome.unsettled,
            "instance stopped"
        );
        outcome
    }

    /// Stops one recording call for the shutdown: stop signal, drain until `deadline`,
    /// revocation, `notRecording` until `limit`.
    async fn stop_one(
        &self,
        entry: Arc<CallEntry>,
        retention: Arc<RetentionShared>,
        deadline: Instant,
        limit: Instant,
    ) -> Result<(), Unreported> {
        let call = retention.call_id().clone();
        let unreported = |error| Unreported {
            call_id: call.clone(),
            status: RecordingStatus::NotRecording,
            error: Arc::new(error),
        };
        let audit = self.inner.calls.audit();
        let outstanding = retention.outstanding();
        if outstanding > 0 {
            // The stop signal is raised once its event is in the trail (G9), as a stop raises
            // it; if the sink refuses it, the revocation below ends the capabilities at once.
            let signal =
                AuditEvent::now(call.normalized(), AuditKind::DrainStarted { outstanding });
            match audit.record(&signal) {
                Ok(()) => {
                    retention.raise_stop();
                    if let Err(alive) = retention.drain(tokio::time::sleep_until(deadline)).await {
                        let timed_out = AuditEvent::now(
                            call.normalized(),
                            AuditKind::DrainTimedOut { outstanding: alive },
                        );
                        if let Err(e) = audit.record(&timed_out) {
                            tracing::error!(call_id = %call, error = %e, "could not audit a drain timeout");
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(call_id = %call, error = %e, "could not audit the stop signal; revoking at once");
                }
            }
        }
        // No write is in flight and none can start (G8); from here on the driver sends
        // nothing for the call but this report.
        retention.revoke();
        self.inner.hub.mark_ended(&call);
        retention
            .record_unrecorded()
            .map_err(|e| unreported(Error::Audit(e)))?;
        let update = report(
            &call,
            RecordingStatus::NotRecording,
            entry,
            retention.episode(),
        );
        match tokio::time::timeout_at(limit, self.run(update)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(unreported(e)),
            Err(_) => Err(unreported(Error::Timeout)),
        }
    }
}
