//! Restarting after a crash: [`Driver::recover`] closes the calls a crashed run left
//! `PendingRecording` or `Recording`, as its trail shows them, and reports each to Graph.

use std::sync::Arc;

use tokio::task::JoinSet;

use super::{Driver, Unreported};
use crate::audit::{AuditEvent, AuditKind, OpenCall};
use crate::error::Error;
use crate::protocol::CallState;
use crate::seam::{entry, report};
use crate::status::RecordingStatus;
use crate::transport::Transport;
use crate::types::CallId;

/// What [`Driver::recover`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Recovery {
    /// Calls closed whose report Graph acknowledged.
    pub reported: usize,
    /// Calls not closed, or whose report Graph did not acknowledge, with why. Graph may still
    /// show these calls `recording`; [`Driver::recover`] may be called again for them.
    pub unreported: Vec<Unreported>,
}

impl<T: Transport + 'static> Driver<T> {
    /// Closes the calls a crashed run of the bot left open, so that Graph stops showing them
    /// `recording`: pass the [`open`](crate::audit::Verified::open) calls of the trail it left
    /// ([`verify`](crate::audit::verify) over [`JsonLinesSink::read`](crate::audit::JsonLinesSink::read),
    /// a torn last line included), before this run opens any of them.
    ///
    /// For each call, the trail records `call_recovered` (the state the crashed run left it in,
    /// the capabilities it shows alive, which died with that process, and when the crashed run
    /// last wrote for it), then the driver reports `notRecording` for a call left `Recording`,
    /// or `failed` for one left `PendingRecording` (its `recording` request may still complete:
    /// Graph must not show a recording nobody stores). The verifier then lists the call under
    /// [`Verified::recovered`](crate::audit::Verified::recovered), apart from calls left open.
    ///
    /// A call this run has begun recording again is not reported (its own episode decides
    /// what Graph shows: the report is superseded); a call Graph says is gone (`8522`) counts
    /// as closed.
    ///
    /// # Example
    /// ```no_run
    /// # async fn f(transport: recording_status::testing::ScriptedTransport, token: recording_status::AccessToken) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use recording_status::audit::{JsonLinesSink, verify};
    /// use recording_status::driver::{Driver, DriverConfig};
    /// use recording_status::Graph;
    ///
    /// // What the crashed run left, read before this run writes.
    /// let left = verify(&JsonLinesSink::read("audit.jsonl")?.events)?.open;
    /// let audit = Arc::new(JsonLinesSink::open("audit.jsonl")?); // resumes after a torn line
    /// let (driver, _events) = Driver::new(Graph::new(transport, token), audit, DriverConfig::default());
    /// let recovery = driver.recover(&left).await;
    /// for u in &recovery.unreported {
    ///     eprintln!("{} may still show recording: {}", u.call_id, u.error);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Time
    /// Every call's report runs at once, each within the retry policy's deadline.
    ///
    /// # Cancellation
    /// Dropping this future drops the reports not yet answered: those calls are recorded as
    /// recovered but may not have been reported (the verifier says `NOT reported`); calling
    /// `recover` again with the same calls sends their reports.
    pub async fn recover(&self, left: &[OpenCall]) -> Recovery {
        let _active = self.inner.life.enter();
        let mut reports = JoinSet::new();
        let mut recovery = Recovery::default();
        for open in left {
            let call: CallId = match open.call_id.parse() {
                Ok(call) => call,
                Err(e) => {
                    tracing::error!(call_id = %open.call_id, error = %e, "a trail's call id is not a Graph call id; not recovered");
                    continue;
                }
            };
            let status = match open.state {
                CallState::PendingRecording => RecordingStatus::Failed,
                _ => RecordingStatus::NotRecording,
            };
            let recovered = AuditEvent::now(
                call.normalized(),
                AuditKind::CallRecovered {
                    state: open.state,
                    capabilities: open.live.clone(),
                    last_event_at: open.last_event_at,
                },
            );
            if let Err(e) = self.inner.calls.audit().record(&recovered) {
                recovery.unreported.push(Unreported {
                    call_id: call,
                    status,
                    error: Arc::new(Error::Audit(e)),
                });
                continue;
            }
            let driver = self.clone();
            reports.spawn(async move {
                let entry = entry(&driver.inner.calls, &call);
                let episode = entry.episode();
                let update = report(&call, status, entry, episode);
                let reported = driver.run(update).await;
                if let Err(e) = &reported {
                    driver.gone_if_not_found(&call, e);
                }
                (call, status, reported)
            });
        }
        while let Some(reported) = reports.join_next().await {
            match reported {
                Ok((_, _, Ok(()))) => recovery.reported += 1,
                // This run records the call again: its own episode decides what Graph shows.
                Ok((_, _, Err(Error::Superseded { .. }))) => {}
                Ok((_, _, Err(e)))
                    if e.permanent() == Some(crate::response::Permanent::CallNotFound) =>
                {
                    recovery.reported += 1;
                }
                Ok((call_id, status, Err(e))) => recovery.unreported.push(Unreported {
                    call_id,
                    status,
                    error: Arc::new(e),
                }),
                Err(e) => tracing::error!(error = %e, "a recovery report task failed"),
            }
        }
        tracing::info!(
            reported = recovery.reported,
            unreported = recovery.unreported.len(),
            "calls a crashed run left open recovered"
        );
        recovery
    }
}
