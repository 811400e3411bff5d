//! Graph's two status vocabularies: the [`RecordingStatus`] a bot sends, and the
//! [`OperationStatus`] Graph answers with.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The recording status a bot reports in `POST …/updateRecordingStatus`.
///
/// Graph's `recordingStatus` enum also has `unknown` and `unknownFutureValue`; they are not
/// meaningful to send, so they cannot be expressed here.
///
/// # Example
/// ```
/// use recording_status::RecordingStatus;
///
/// assert_eq!(serde_json::to_string(&RecordingStatus::NotRecording)?, "\"notRecording\"");
/// assert!(serde_json::from_str::<RecordingStatus>("\"unknownFutureValue\"").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::exhaustive_enums)] // Exactly the three values Graph documents as sendable.
pub enum RecordingStatus {
    /// `notRecording`: the bot has stopped (or never started) persisting media.
    NotRecording,
    /// `recording`: the bot wants to persist media. Persisting is allowed only once Graph has
    /// acknowledged this as `completed`.
    Recording,
    /// `failed`: recording broke or could not start.
    Failed,
}

impl RecordingStatus {
    /// The wire spelling (`notRecording`, `recording`, `failed`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotRecording => "notRecording",
            Self::Recording => "recording",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for RecordingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of a Graph `commsOperation` (here an `updateRecordingStatusOperation`).
///
/// Parsed case-insensitively: Graph's docs and wire examples say `completed`, its metadata and
/// generated SDKs say `Completed`. A value this crate does not know is kept in
/// [`OperationStatus::Unknown`], never an error, and never treated as completion.
///
/// # Example
/// ```
/// use recording_status::OperationStatus;
///
/// assert_eq!(OperationStatus::parse("Completed"), OperationStatus::Completed);
/// assert_eq!(OperationStatus::parse("RUNNING"), OperationStatus::Running);
/// assert_eq!(OperationStatus::parse("paused"), OperationStatus::Unknown("paused".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
#[non_exhaustive]
pub enum OperationStatus {
    /// `notStarted`: the final status will arrive as a notification.
    NotStarted,
    /// `running`: the final status will arrive as a notification.
    Running,
    /// `completed`: the operation has ended. It succeeded only if it carries no error as well
    /// (Graph documents operations that end `completed` with an error `completionReason`);
    /// [`Operation::is_successful_completion`](crate::response::Operation::is_successful_completion)
    /// is the rule. Only such a successful completion of a `recording` update allows media to
    /// be persisted.
    Completed,
    /// `failed`: the operation did not succeed; see its `resultInfo`.
    Failed,
    /// Any other string, kept verbatim.
    Unknown(String),
}

impl OperationStatus {
    /// Parses a status, ignoring ASCII case.
    pub fn parse(s: &str) -> Self {
        if s.eq_ignore_ascii_case("notStarted") {
            Self::NotStarted
        } else if s.eq_ignore_ascii_case("running") {
            Self::Running
        } else if s.eq_ignore_ascii_case("completed") {
            Self::Completed
        } else if s.eq_ignore_ascii_case("failed") {
            Self::Failed
        } else {
            Self::Unknown(s.to_owned())
        }
    }

    /// The camelCase spelling, or the unknown string as received.
    pub fn as_str(&self) -> &str {
        match self {
            Self::NotStarted => "notStarted",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Unknown(s) => s,
        }
    }

    /// `true` for `completed` and `failed`: no further notification will follow.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

impl From<OperationStatus> for String {
    fn from(s: OperationStatus) -> Self {
        s.as_str().to_owned()
    }
}

impl<'de> Deserialize<'de> for OperationStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

impl fmt::Display for OperationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_spellings() {
        for (s, w) in [
            (RecordingStatus::NotRecording, "\"notRecording\""),
            (RecordingStatus::Recording, "\"recording\""),
            (RecordingStatus::Failed, "\"failed\""),
        ] {
            assert_eq!(serde_json::to_string(&s).unwrap(), w);
            assert_eq!(serde_json::from_str::<RecordingStatus>(w).unwrap(), s);
        }
        for bad in ["\"unknown\"", "\"unknownFutureValue\"", "\"Recording\""] {
            assert!(serde_json::from_str::<RecordingStatus>(bad).is_err());
        }
    }

    #[test]
    fn inbound_is_case_insensitive_and_lossless() {
        for (w, s) in [
            ("completed", OperationStatus::Completed),
            ("Completed", OperationStatus::Completed),
            ("NotStarted", OperationStatus::NotStarted),
            ("notstarted", OperationStatus::NotStarted),
            ("Running", OperationStatus::Running),
            ("FAILED", OperationStatus::Failed),
            ("", OperationStatus::Unknown(String::new())),
            (
                "unknownFutureValue",
                OperationStatus::Unknown("unknownFutureValue".into()),
            ),
        ] {
            assert_eq!(OperationStatus::parse(w), s);
        }
        let v: OperationStatus = serde_json::from_str("\"Completed\"").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"completed\"");
    }
}
