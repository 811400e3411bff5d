//! The witness file: [`FileWitness`] appends notes to it, [`CheckpointFile`] reads it back.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use super::{SignedCheckpoint, Witness};
use crate::error::AuditError;

/// A witness that appends each note to a file, opened for appending (`O_APPEND`), and syncs
/// the file after each note. Nothing of the file is ever rewritten, so an auditor may
/// collect it as it grows (a log shipper tailing it, a mount only the auditor can read
/// back).
///
/// Put the file where the operator cannot rewrite it: a file on the bot's own disk, beside
/// the trail, proves nothing against whoever can rewrite both.
///
/// # Example
/// ```
/// use recording_status::audit::{Checkpoint, CheckpointFile, CheckpointSigner, FileWitness, Witness};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("checkpoints.txt");
/// let witness = FileWitness::open(&path)?;
/// let signer = CheckpointSigner::new("bot-1", [1; 32])?;
/// witness.witness(&Checkpoint::new("example.com/bot-1/audit", 1, [0; 32], chrono::Utc::now())?.sign(&signer))?;
///
/// let file = CheckpointFile::read(&path)?;
/// assert_eq!((file.notes.len(), file.unreadable.len()), (1, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FileWitness {
    file: Mutex<File>,
}

impl FileWitness {
    /// Opens `path` for appending, creating it if needed. The file is read once: if it ends
    /// inside a note (a torn last note), that note is ended first (newlines, and a line that
    /// is no signature if a signature line was cut), so that the next note starts on its own
    /// and the torn one reads as one unreadable note (or as the note it was, if only its
    /// final empty line was missing).
    ///
    /// # Errors
    /// [`AuditError::Io`]: the file cannot be opened, read or written.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::FileWitness;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let witness = FileWitness::open(dir.path().join("checkpoints.txt"))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut bytes)?;
        let (read, tail) = CheckpointFile::frame(&bytes);
        let end = tail.terminator();
        if !end.is_empty() {
            tracing::warn!(
                line = read.unreadable.last().map(|u| u.line),
                "checkpoint witness file ends inside a note: ending it before appending"
            );
            file.write_all(end)?;
            file.sync_data()?;
        }
        Ok(Self {
            file: Mutex::new(file),
        })
    }
}

impl Witness for FileWitness {
    /// Appends the note and an empty line with one write, then syncs the file.
    fn witness(&self, checkpoint: &SignedCheckpoint) -> Result<(), AuditError> {
        let mut note = checkpoint.to_note().into_bytes();
        note.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(&note)?;
        file.sync_data()?;
        Ok(())
    }
}

/// A note read from a witness file, with where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NoteAt {
    /// The line of the file where the note starts, counted from 1.
    pub line: usize,
    /// The note, not yet verified.
    pub checkpoint: SignedCheckpoint,
}

/// A note of a witness file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnreadableNote {
    /// The line where it starts, counted from 1.
    pub line: usize,
    /// Whether it is the file's last note, cut short (not ended by its empty line).
    pub torn: bool,
    /// What is wrong with it.
    pub reason: String,
}

/// A witness file read back: its notes in file order, and the notes that could not be read.
///
/// # Framing
///
/// The file is UTF-8: signed notes one after another, each ended by one empty line. A note
/// is its text lines, a blank line, its signature lines; so each note in the file is
///
/// ```text
/// <origin>\n<size>\n<hash>\n<time line>\n\n<signature line>\n…\n
/// ```
///
/// A reader goes line by line: text lines until a blank line, then signature lines until a
/// blank line, which ends the note. Blank lines between notes are skipped. A note that
/// does not parse is reported ([`UnreadableNote`]) and the reader goes on with the next one;
/// a last note cut short (the witness's host lost power mid-write, or the file was copied
/// while a note was being appended) is reported as torn, and the notes before it are read.
///
/// # Example: a torn last note
/// ```
/// use recording_status::audit::{Checkpoint, CheckpointFile, CheckpointSigner};
///
/// let signer = CheckpointSigner::new("bot-1", [1; 32])?;
/// let note = |seq| Ok::<_, Box<dyn std::error::Error>>(
///     Checkpoint::new("example.com/bot-1/audit", seq, [0; 32], chrono::Utc::now())?.sign(&signer).to_note());
/// let mut file = format!("{}\n{}\n", note(1)?, note(2)?);
/// let third = note(3)?;
/// file.push_str(&third[..third.len() / 2]); // the witness's host lost power
///
/// let read = CheckpointFile::parse(file.as_bytes());
/// assert_eq!(read.notes.len(), 2);
/// assert!(read.unreadable[0].torn);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointFile {
    /// The notes that parse, in file order.
    pub notes: Vec<NoteAt>,
    /// The notes that do not, in file order (a torn one last).
    pub unreadable: Vec<UnreadableNote>,
}

impl CheckpointFile {
    /// Reads the witness file at `path`.
    ///
    /// # Errors
    /// [`AuditError::Io`]: the file cannot be read. What is in it never fails the read: see
    /// [`unreadable`](Self::unreadable).
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::CheckpointFile;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("checkpoints.txt");
    /// std::fs::write(&path, "")?;
    /// assert!(CheckpointFile::read(&path)?.notes.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        Ok(Self::parse(&std::fs::read(path)?))
    }

    /// Reads a witness file's bytes.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::CheckpointFile;
    ///
    /// let read = CheckpointFile::parse("not\na note\n\n\u{2014} k AAAA\n\n".as_bytes());
    /// assert_eq!((read.notes.len(), read.unreadable.len()), (0, 1));
    /// assert!(!read.unreadable[0].torn);
    /// ```
    pub fn parse(bytes: &[u8]) -> Self {
        Self::frame(bytes).0
    }

    /// Reads the notes, and says how the file ends.
    fn frame(bytes: &[u8]) -> (Self, Tail) {
        let mut read = Self::default();
        // The note being read: its first line, its bytes so far, and whether its signature
        // lines have begun.
        let mut note: Option<(usize, Vec<u8>, bool)> = None;
        let mut signature_lines = 0usize;
        let mut open_line = false;
        for (index, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
            let number = index + 1;
            open_line = !line.ends_with(b"\n");
            let blank = line == b"\n";
            match &mut note {
                None if blank => {}
                None => {
                    note = Some((number, line.to_vec(), false));
                    signature_lines = 0;
                }
                Some((_, bytes, signing)) => {
                    bytes.extend_from_slice(line);
                    if !blank {
                        signature_lines += usize::from(*signing && !open_line);
                    } else if !*signing {
                        *signing = true;
                    } else {
                        // The empty line that ends the note.
                        let (start, mut bytes, _) = note.take().unwrap_or_default();
                        bytes.pop();
                        read.push(start, &bytes, signature_lines);
                    }
                }
            }
        }
        let tail = match &note {
            None => Tail::Between,
            Some((line, _, signing)) => {
                read.unreadable.push(UnreadableNote {
                    line: *line,
                    torn: true,
                    reason: "the file ends inside this note (torn)".to_owned(),
                });
                match (*signing, open_line) {
                    (false, open) => Tail::Text { open },
                    (true, true) => Tail::SignatureCut,
                    (true, false) => Tail::Signatures {
                        whole: signature_lines,
                    },
                }
            }
        };
        (read, tail)
    }

    fn push(&mut self, line: usize, bytes: &[u8], signature_lines: usize) {
        let parsed = match std::str::from_utf8(bytes) {
            Ok(_) if signature_lines == 0 => Err("no signature line".to_owned()),
            Ok(text) => SignedCheckpoint::parse(text).map_err(|e| e.to_string()),
            Err(_) => Err("not UTF-8".to_owned()),
        };
        match parsed {
            Ok(checkpoint) => self.notes.push(NoteAt { line, checkpoint }),
            Err(reason) => self.unreadable.push(UnreadableNote {
                line,
                torn: false,
                reason,
            }),
        }
    }
}

/// Where a witness file ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Between notes.
    Between,
    /// In a note's text; `open`: in a line not ended.
    Text { open: bool },
    /// In a note's signatures, `whole` of them ended by a newline, none cut.
    Signatures { whole: usize },
    /// In a signature line not ended.
    SignatureCut,
}

impl Tail {
    /// What to append so that the note being cut off ends, and reads as unreadable unless it
    /// was whole but for its empty line (its signature lines all ended); nothing between
    /// notes.
    fn terminator(self) -> &'static [u8] {
        match self {
            Self::Between => b"",
            // No signature line: the note cannot read.
            Self::Text { open: false } => b"\n\n",
            Self::Text { open: true } => b"\n\n\n",
            Self::Signatures { whole: 0 } => b"\n",
            // A cut signature may still decode as base64: a line that is no signature
            // makes the note unreadable rather than badly signed.
            Self::SignatureCut => b"\ntorn\n\n",
            Self::Signatures { .. } => b"\n",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Checkpoint, CheckpointSigner};

    fn note(seq: u64) -> String {
        let signer = CheckpointSigner::new("k", [1; 32]).unwrap();
        Checkpoint::new("o", seq, [0; 32], chrono::Utc::now())
            .unwrap()
            .sign(&signer)
            .to_note()
    }

    #[test]
    fn notes_are_read_between_blank_lines_and_a_bad_one_is_skipped() {
        let text = format!(
            "\n{}\n{}\n\nnot a note\n\n\u{2014} k AAAAAA==\n\n{}\n",
            note(1),
            note(2),
            note(3)
        );
        let read = CheckpointFile::parse(text.as_bytes());
        let seqs: Vec<u64> = read
            .notes
            .iter()
            .map(|n| n.checkpoint.checkpoint().seq())
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(read.notes[0].line, 2);
        assert_eq!(read.unreadable.len(), 1);
        assert!(!read.unreadable[0].torn);
    }

    #[test]
    fn every_cut_of_the_last_note_is_torn_and_keeps_the_earlier_ones() {
        let first = format!("{}\n", note(1));
        let last = format!("{}\n", note(2));
        for cut in 1..last.len() {
            if !last.is_char_boundary(cut) {
                continue;
            }
            let text = format!("{first}{}", &last[..cut]);
            let read = CheckpointFile::parse(text.as_bytes());
            assert_eq!(read.notes.len(), 1, "cut at {cut}");
            assert_eq!(read.unreadable.len(), 1, "cut at {cut}");
            assert!(read.unreadable[0].torn, "cut at {cut}");
        }
        let read = CheckpointFile::parse(format!("{first}{last}").as_bytes());
        assert_eq!((read.notes.len(), read.unreadable.len()), (2, 0));
    }

    /// Whatever byte the last note was cut at, the witness reopening the file ends it so
    /// that the next note reads, and the cut one reads as unreadable, never as a note with a
    /// bad signature (unless it was whole but for its empty line).
    #[test]
    fn opening_a_file_with_a_torn_note_ends_it_so_the_next_note_reads() {
        let signer = CheckpointSigner::new("k", [1; 32]).unwrap();
        let key = signer.verifier_key();
        let second = format!("{}\n", note(2));
        let third = Checkpoint::new("o", 3, [0; 32], chrono::Utc::now())
            .unwrap()
            .sign(&signer);
        let dir = tempfile::tempdir().unwrap();
        for cut in 0..=second.len() {
            if !second.is_char_boundary(cut) {
                continue;
            }
            let path = dir.path().join(format!("w{cut}.txt"));
            std::fs::write(&path, format!("{}\n{}", note(1), &second[..cut])).unwrap();
            FileWitness::open(&path).unwrap().witness(&third).unwrap();
            let read = CheckpointFile::read(&path).unwrap();
            let seqs: Vec<u64> = read
                .notes
                .iter()
                .map(|n| n.checkpoint.verify(&key).unwrap().seq())
                .collect();
            let whole = cut >= second.len() - 1;
            let expected: &[u64] = if whole { &[1, 2, 3] } else { &[1, 3] };
            assert_eq!(seqs, expected, "cut at {cut}");
            let unreadable = usize::from(!whole && cut > 0);
            assert_eq!(read.unreadable.len(), unreadable, "cut at {cut}");
            assert!(read.unreadable.iter().all(|u| !u.torn), "cut at {cut}");
        }
        // A whole file is left as it is.
        let path = dir.path().join("whole.txt");
        let whole = format!("{}\n", note(1));
        std::fs::write(&path, &whole).unwrap();
        drop(FileWitness::open(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), whole);
    }
}
