//! Largest-first ordering over a bounded window.
//!
//! Listing streams, so a global sort would hold every file in memory. Instead the planner keeps
//! up to `capacity` files in a heap and always releases the largest one; when the listing ends
//! the rest drains in size order. For trees smaller than the window this is a full sort (the
//! big files start first and the tail is short); for huge trees memory stays bounded.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use hbcp_store::Entry;

struct BySize(Entry);

impl PartialEq for BySize {
    fn eq(&self, other: &Self) -> bool {
        self.0.size == other.0.size && self.0.key == other.0.key
    }
}
impl Eq for BySize {}
impl PartialOrd for BySize {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for BySize {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .size
            .cmp(&other.0.size)
            .then_with(|| other.0.key.cmp(&self.0.key))
    }
}

/// A bounded largest-first window.
pub struct LargestFirst {
    heap: BinaryHeap<BySize>,
    capacity: usize,
}

impl LargestFirst {
    /// A window of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        LargestFirst {
            heap: BinaryHeap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Add an entry; returns the entry to release now if the window is full.
    pub fn push(&mut self, e: Entry) -> Option<Entry> {
        self.heap.push(BySize(e));
        if self.heap.len() > self.capacity {
            self.heap.pop().map(|b| b.0)
        } else {
            None
        }
    }

    /// Release the largest entry held, if any.
    pub fn pop(&mut self) -> Option<Entry> {
        self.heap.pop().map(|b| b.0)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hbcp_store::EntryKind;

    fn e(key: &str, size: u64) -> Entry {
        Entry {
            key: key.into(),
            size,
            version: None,
            modified: None,
            kind: EntryKind::File,
        }
    }

    #[test]
    fn small_trees_come_out_fully_sorted() {
        let mut w = LargestFirst::new(100);
        for (i, s) in [5u64, 1, 9, 3, 9, 0].iter().enumerate() {
            assert!(w.push(e(&format!("k{i}"), *s)).is_none());
        }
        let order: Vec<u64> = std::iter::from_fn(|| w.pop()).map(|x| x.size).collect();
        assert_eq!(order, vec![9, 9, 5, 3, 1, 0]);
    }

    #[test]
    fn window_is_bounded() {
        let mut w = LargestFirst::new(2);
        assert!(w.push(e("a", 1)).is_none());
        assert!(w.push(e("b", 2)).is_none());
        assert_eq!(w.push(e("c", 3)).unwrap().size, 3);
        assert_eq!(w.len(), 2);
    }
}
