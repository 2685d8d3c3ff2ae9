//! Splitting a plan into shards for many machines.
//!
//! Every machine reads the same plan in the same order and runs the same greedy assignment: each
//! entry goes to the shard with the least work so far, where work counts bytes plus a fixed cost
//! per request (so a shard of many small files and a shard of a few large ones take about as
//! long). The assignment is deterministic and needs only `N` counters, however long the plan.
//! A file is never split across shards: its ranges are staged and committed by one machine.

use hbcp_store::{Entry, EntryKind};

use hbcp_state::range_count;

/// The cost of one request, in bytes of transfer it is worth.
pub const REQUEST_COST: u64 = 1 << 20;

/// `I/N` as given on the command line (I counts from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardId {
    /// This shard.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

/// The most shards a plan may be run in (a status or finalize keeps a counter per shard).
pub const MAX_SHARDS: u32 = 100_000;

impl ShardId {
    /// Parse `I/N` with `0 <= I < N`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("--shard {s:?}: expected I/N, e.g. 0/8"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("--shard {s:?}: I is not a number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("--shard {s:?}: N is not a number"))?;
        if count == 0 || index >= count || count > MAX_SHARDS {
            return Err(format!(
                "--shard {s:?}: expected 0 <= I < N <= {MAX_SHARDS} (shards count from 0)"
            ));
        }
        Ok(ShardId { index, count })
    }
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-of-{}", self.index, self.count)
    }
}

/// The greedy balancer.
#[derive(Debug, Clone)]
pub struct Assigner {
    load: Vec<u64>,
    range_size: u64,
}

impl Assigner {
    /// A balancer over `count` shards for a plan cut at `range_size`.
    pub fn new(count: u32, range_size: u64) -> Self {
        Assigner {
            load: vec![0; count.max(1) as usize],
            range_size,
        }
    }

    /// Which shard copies `e`.
    pub fn assign(&mut self, e: &Entry) -> u32 {
        let requests = if e.kind == EntryKind::File {
            range_count(e.size, self.range_size).max(1)
        } else {
            1
        };
        let cost = e.size + requests * REQUEST_COST;
        let (best, _) = self
            .load
            .iter()
            .enumerate()
            .min_by_key(|(i, l)| (**l, *i))
            .expect("at least one shard");
        self.load[best] += cost;
        best as u32
    }

    /// Work assigned so far per shard.
    pub fn loads(&self) -> &[u64] {
        &self.load
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(k: &str, size: u64) -> Entry {
        Entry {
            key: k.into(),
            size,
            version: None,
            modified: None,
            kind: EntryKind::File,
        }
    }

    #[test]
    fn parse_shard_ids() {
        assert_eq!(
            ShardId::parse("2/8").unwrap(),
            ShardId { index: 2, count: 8 }
        );
        for bad in ["8/8", "1", "a/2", "0/0", "-1/3"] {
            assert!(ShardId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn assignment_is_deterministic_and_balanced() {
        let entries: Vec<Entry> = (0..1000u64)
            .map(|i| f(&format!("k{i}"), (i * 7919) % (64 << 20)))
            .collect();
        let run = || {
            let mut a = Assigner::new(4, 16 << 20);
            let v: Vec<u32> = entries.iter().map(|e| a.assign(e)).collect();
            (v, a.loads().to_vec())
        };
        let (a1, loads) = run();
        let (a2, _) = run();
        assert_eq!(a1, a2);
        let (min, max) = (*loads.iter().min().unwrap(), *loads.iter().max().unwrap());
        // Greedy keeps every shard within one largest item of each other.
        assert!(max - min <= (64 << 20) + 4 * REQUEST_COST, "{loads:?}");
        for s in 0..4 {
            assert!(a1.contains(&s));
        }
    }
}
