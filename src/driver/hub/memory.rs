//! What the hub remembers, each kind in a memory bounded by age and bytes: [`Memory`] for
//! updates and requests (indexed by string keys), [`EndedCalls`] for calls that ended.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// What `len` bytes on the heap cost: what the allocator takes for them (glibc's chunks, a
/// common case: an 8-byte header, 16-byte steps, 32 bytes at least); 0 for nothing allocated.
/// The budget counts this, not the bytes requested, so that it follows the process's memory
/// (`benches/memory.rs`, "Held updates").
pub(super) fn heap(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len + 8).next_multiple_of(16).max(32)
    }
}

/// What a slot of `size` bytes in a hash map or a growing queue costs on average: one control
/// byte, and the spare capacity a table keeps between its doublings (it is between 7/16 and
/// 7/8 full).
fn slot(size: usize) -> usize {
    (size + 1) * 3 / 2
}

/// Remembered entries of one kind, indexed by string keys, bounded by age and bytes.
pub(super) struct Memory<T> {
    entries: HashMap<u64, Entry<T>>,
    /// Ids in insertion order (and so in age order); removed ids are skipped lazily.
    order: VecDeque<u64>,
    index: HashMap<String, Vec<u64>>,
    pub(super) bytes: usize,
}

struct Entry<T> {
    at: Instant,
    bytes: usize,
    keys: Vec<String>,
    value: T,
}

impl<T> Default for Memory<T> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            index: HashMap::new(),
            bytes: 0,
        }
    }
}

impl<T> Memory<T> {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Remembers `value` under `keys`; `bytes` is what the value holds on the heap (see
    /// [`heap`]): the entry's own costs (its slots, its keys, held twice) are added here.
    pub(super) fn insert(
        &mut self,
        id: u64,
        at: Instant,
        keys: Vec<String>,
        bytes: usize,
        value: T,
    ) {
        let bytes = bytes
            + slot(std::mem::size_of::<(u64, Entry<T>)>())
            + slot(std::mem::size_of::<u64>())
            + heap(keys.len() * std::mem::size_of::<String>())
            + keys
                .iter()
                .map(|k| {
                    2 * heap(k.len())
                        + slot(std::mem::size_of::<(String, Vec<u64>)>())
                        + heap(std::mem::size_of::<u64>())
                })
                .sum::<usize>();
        for k in &keys {
            self.index.entry(k.clone()).or_default().push(id);
        }
        self.bytes += bytes;
        self.order.push_back(id);
        self.entries.insert(
            id,
            Entry {
                at,
                bytes,
                keys,
                value,
            },
        );
    }

    pub(super) fn remove(&mut self, id: u64) -> Option<T> {
        let entry = self.entries.remove(&id)?;
        self.bytes -= entry.bytes;
        for k in &entry.keys {
            if let Some(ids) = self.index.get_mut(k) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.index.remove(k);
                }
            }
        }
        Some(entry.value)
    }

    /// The first entry found under any of `keys` that `pred` accepts.
    pub(super) fn find(&self, keys: &[String], mut pred: impl FnMut(&T) -> bool) -> Option<u64> {
        keys.iter()
            .filter_map(|k| self.index.get(k))
            .flatten()
            .copied()
            .find(|id| self.entries.get(id).is_some_and(|e| pred(&e.value)))
    }

    /// Removes and returns the oldest entry if it is older than `max_age`.
    pub(super) fn pop_expired(&mut self, now: Instant, max_age: Duration) -> Option<T> {
        while let Some(&id) = self.order.front() {
            let Some(entry) = self.entries.get(&id) else {
                self.order.pop_front();
                continue;
            };
            if now.saturating_duration_since(entry.at) <= max_age {
                return None;
            }
            self.order.pop_front();
            return self.remove(id);
        }
        None
    }

    pub(super) fn pop_oldest(&mut self) -> Option<T> {
        while let Some(id) = self.order.pop_front() {
            if let Some(value) = self.remove(id) {
                return Some(value);
            }
        }
        None
    }
}

/// EndedCalls calls by normalised id, oldest first. Lighter than a [`Memory`] (one map, one queue,
/// no index): the hub keeps one per ended call, about 200 bytes each.
#[derive(Default)]
pub(super) struct EndedCalls {
    at: HashMap<String, Instant>,
    /// In the order they ended; an entry whose call ended again later is stale and skipped.
    order: VecDeque<(Instant, String)>,
    /// Estimated heap bytes, counted against the budget like the other memories: each id is
    /// held twice (map and queue), and each of the two slots is counted one and a half times
    /// for the spare capacity of a growing map or queue. Measured (`benches/memory.rs`):
    /// about 196 bytes per ended call at 10,000 calls, counted as 184.
    pub(super) bytes: usize,
}

impl EndedCalls {
    pub(super) fn cost(call: &str) -> usize {
        3 * std::mem::size_of::<(Instant, String)>() + 2 * call.len()
    }

    pub(super) fn insert(&mut self, call: &str, now: Instant) {
        // Ended again (a later call under the same id): the newer time counts, and the queue
        // keeps a second, stale entry until it is popped.
        self.at.insert(call.to_owned(), now);
        self.order.push_back((now, call.to_owned()));
        self.bytes += Self::cost(call);
    }

    pub(super) fn contains(&self, call: &str) -> bool {
        self.at.contains_key(call)
    }

    /// Forgets the oldest ended call: any (`None`), or only one older than `max_age` at `now`.
    pub(super) fn pop(&mut self, expired: Option<(Instant, Duration)>) -> Option<String> {
        while let Some((at, call)) = self.order.front() {
            if let Some((now, max_age)) = expired
                && now.saturating_duration_since(*at) <= max_age
            {
                return None;
            }
            let current = self.at.get(call) == Some(at);
            let Some((_, call)) = self.order.pop_front() else {
                break;
            };
            self.bytes -= Self::cost(&call);
            if current {
                self.at.remove(&call);
                return Some(call);
            }
        }
        None
    }
}
