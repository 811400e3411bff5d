//! A trail's file in memory that fails and waits on demand, for the tests of the sinks and of
//! the loops that wait for them. An append that fails writes half its bytes first, as a full
//! disk does.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use super::durable::SyncFn;
use super::sink::Storage;
use super::{Durability, JsonLinesSink};

/// See the module's docs. Clones share everything.
#[derive(Clone, Default)]
pub(crate) struct Flaky {
    pub(crate) data: Arc<Mutex<Vec<u8>>>,
    pub(crate) fail_append: Arc<AtomicBool>,
    pub(crate) fail_sync: Arc<AtomicBool>,
    pub(crate) fail_truncate: Arc<AtomicBool>,
    /// The next append writes its bytes, then panics.
    pub(crate) panic_append: Arc<AtomicBool>,
    pub(crate) syncs: Arc<AtomicUsize>,
    pub(crate) appends: Arc<AtomicUsize>,
    /// Fails the append with this number (counted from 1; 0 for none).
    pub(crate) fail_nth: Arc<AtomicUsize>,
    /// Fails every append whose number is a multiple of this (0 for none).
    pub(crate) fail_every: Arc<AtomicUsize>,
    /// If set, the next append waits for a message first.
    pub(crate) gate: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
    /// If set, the next sync waits for a message first.
    pub(crate) sync_gate: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
    /// How many bytes the last successful sync made durable.
    pub(crate) synced: Arc<AtomicUsize>,
}

impl Flaky {
    /// The file's bytes.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.data.lock().unwrap().clone()
    }

    /// The bytes the last successful sync made durable.
    pub(crate) fn synced(&self) -> Vec<u8> {
        let data = self.data.lock().unwrap();
        data[..self.synced.load(Ordering::SeqCst).min(data.len())].to_vec()
    }

    /// A sink writing to this file from its start.
    pub(crate) fn sink(&self, durability: Durability) -> JsonLinesSink {
        JsonLinesSink::over(Box::new(self.clone()), durability)
    }
}

impl Storage for Flaky {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let gate = self.gate.lock().unwrap().take();
        if let Some(gate) = gate {
            gate.recv().unwrap();
        }
        if self.panic_append.swap(false, Ordering::SeqCst) {
            self.data.lock().unwrap().extend_from_slice(bytes);
            panic!("storage panicked after writing");
        }
        let mut data = self.data.lock().unwrap();
        let nth = self.appends.fetch_add(1, Ordering::SeqCst) + 1;
        let every = self.fail_every.load(Ordering::SeqCst);
        if self.fail_append.load(Ordering::SeqCst)
            || self.fail_nth.load(Ordering::SeqCst) == nth
            || (every > 0 && nth.is_multiple_of(every))
        {
            data.extend_from_slice(&bytes[..bytes.len() / 2]);
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        }
        data.extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let gate = self.sync_gate.lock().unwrap().take();
        if let Some(gate) = gate {
            gate.recv().unwrap();
        }
        let len = self.data.lock().unwrap().len();
        self.syncs.fetch_add(1, Ordering::SeqCst);
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("sync failed"));
        }
        self.synced.fetch_max(len, Ordering::SeqCst);
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        if self.fail_truncate.load(Ordering::SeqCst) {
            return Err(io::Error::other("truncate failed"));
        }
        self.data.lock().unwrap().truncate(len as usize);
        self.synced.fetch_min(len as usize, Ordering::SeqCst);
        Ok(())
    }

    fn sync_handle(&self) -> io::Result<SyncFn> {
        let mut file = self.clone();
        Ok(Box::new(move || file.sync()))
    }
}
