//! Where audit events go: the [`AuditSink`] trait, [`MemorySink`] and [`JsonLinesSink`].

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use super::AuditEvent;
use crate::error::AuditError;

/// Where audit events go. Implementations must persist (or at least accept) the event before
/// returning `Ok`: the crate proceeds with the step only afterwards.
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// Records one event.
    ///
    /// # Errors
    /// Any failure to record; the step the event describes is then not taken, where it can be.
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError>;
}

impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        (**self).record(event)
    }
}

/// Keeps events in memory.
///
/// # Example
/// ```
/// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, MemorySink};
///
/// let sink = MemorySink::default();
/// sink.record(&AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 1 }))?;
/// assert_eq!(sink.events().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemorySink {
    /// A copy of the events so far, in order.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl AuditSink for MemorySink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.clone());
        Ok(())
    }
}

/// Appends events to a file, one JSON object per line. Each event is written and flushed to
/// the operating system before [`AuditSink::record`] returns, so a crash of the bot loses no
/// event whose step went ahead; [`JsonLinesSink::with_fsync`] also syncs to disk, for power
/// loss.
#[derive(Debug)]
pub struct JsonLinesSink {
    file: Mutex<BufWriter<File>>,
    fsync: bool,
}

impl JsonLinesSink {
    /// Opens `path` for appending, creating it if needed.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Mutex::new(BufWriter::new(file)),
            fsync: false,
        })
    }

    /// Also `fsync` after each event (slower; survives power loss).
    #[must_use]
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Reads a JSON-lines trail back.
    ///
    /// # Errors
    /// The file cannot be read, or a line is not an [`AuditEvent`].
    pub fn read(path: impl AsRef<Path>) -> Result<Vec<AuditEvent>, AuditError> {
        let text = std::fs::read_to_string(path)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(AuditError::from))
            .collect()
    }
}

impl AuditSink for JsonLinesSink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(&line)?;
        file.flush()?;
        if self.fsync {
            file.get_ref().sync_data()?;
        }
        Ok(())
    }
}
