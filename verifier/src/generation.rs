//! Point-in-time generations of a backup target (`hbcp backup`, `generations`, `restore`).
//!
//! A backup target holds generations: each is a manifest of every file of the root at that
//! time — key, size, checksum, and the key where its bytes are stored. HFiles (write-once,
//! uniquely named) are stored once in a shared pool; other files under the generation that
//! first had that content. A generation is visible only through its manifest, written last in
//! one put; pruning is a pure function of the manifests ([`prune_plan`]) that never deletes a
//! stored key a kept generation names.
//!
//! ```text
//! DST/hbcp-backup.json                     layout marker: format, version, range size of the checksums
//! DST/generations/<id>.manifest.zst        generation <id> (visible once this exists)
//! DST/generations/<id>.pruned              tombstone: generation being pruned (hidden)
//! DST/pool/<hfile-name>                    HFiles, stored once across generations
//! DST/files/<id>/<key>                     other files, stored by the generation that first had them
//! ```

use std::collections::{BTreeMap, BTreeSet};

use hbcp_state::records::{RecordReader, RecordWriter};
use serde::{Deserialize, Serialize};

use crate::Result;

/// Format name of generation manifests.
pub const GENERATION_FORMAT: &str = "hbcp-generation";
/// Format version of generation manifests.
pub const GENERATION_VERSION: u32 = 1;
/// The layout marker at the root of a backup target.
pub const LAYOUT_KEY: &str = "hbcp-backup.json";
/// Format name of the layout marker.
pub const LAYOUT_FORMAT: &str = "hbcp-backup";
/// Folder of the generation manifests.
pub const GENERATIONS_PREFIX: &str = "generations/";
/// Folder of the HFile pool.
pub const POOL_PREFIX: &str = "pool/";
/// Folder of the files stored per generation.
pub const FILES_PREFIX: &str = "files/";

/// The layout marker (`hbcp-backup.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Layout {
    /// [`LAYOUT_FORMAT`].
    pub format: String,
    /// Layout version (1).
    pub version: u32,
    /// Range size of every checksum in this target's manifests.
    pub range_size: u64,
}

/// Header of a generation manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct GenerationHeader {
    /// [`GENERATION_FORMAT`].
    pub format: String,
    /// [`GENERATION_VERSION`].
    pub version: u32,
    /// Generation id (1, 2, …; never reused).
    pub id: u64,
    /// Source URL (redacted).
    pub source: String,
    /// When the backup started (RFC 3339).
    pub started: String,
    /// When the generation was verified (RFC 3339): the moment it stands for.
    pub finished: String,
    /// Range size of the checksums.
    pub range_size: u64,
    /// Files.
    pub files: u64,
    /// Empty directories.
    pub dirs: u64,
    /// Logical bytes (sum of the files' sizes).
    pub bytes: u64,
    /// Files whose bytes this generation stored (not already stored by an earlier one).
    pub new_files: u64,
    /// Bytes this generation stored.
    pub new_bytes: u64,
}

/// One file or empty directory of a generation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GenerationEntry {
    /// Key under the root.
    pub k: String,
    /// Size.
    pub s: u64,
    /// Checksum (16 hex digits); absent for directories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<String>,
    /// An empty directory.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub d: bool,
    /// Where the bytes are stored (key under the backup target); absent for directories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl GenerationEntry {
    /// The checksum as a number.
    pub fn checksum(&self) -> Option<u64> {
        self.h
            .as_deref()
            .and_then(|h| u64::from_str_radix(h, 16).ok())
    }
}

/// Key of generation `id`'s manifest.
pub fn manifest_key(id: u64) -> String {
    format!("{GENERATIONS_PREFIX}{id}.manifest.zst")
}

/// Key of generation `id`'s tombstone (written before a prune deletes anything).
pub fn tombstone_key(id: u64) -> String {
    format!("{GENERATIONS_PREFIX}{id}.pruned")
}

/// What a key under [`GENERATIONS_PREFIX`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerationKey {
    /// A generation manifest.
    Manifest(u64),
    /// A tombstone.
    Tombstone(u64),
}

/// Recognise a manifest or tombstone key.
pub fn parse_key(key: &str) -> Option<GenerationKey> {
    let rest = key.strip_prefix(GENERATIONS_PREFIX)?;
    let id = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0'))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    if let Some(n) = rest.strip_suffix(".manifest.zst") {
        return id(n).map(GenerationKey::Manifest);
    }
    if let Some(n) = rest.strip_suffix(".pruned") {
        return id(n).map(GenerationKey::Tombstone);
    }
    None
}

/// Where generation `id` stores a file that is not a pooled HFile.
pub fn file_key(id: u64, key: &str) -> String {
    format!("{FILES_PREFIX}{id}/{key}")
}

/// Where an HFile named `name` is stored.
pub fn pool_key(name: &str) -> String {
    format!("{POOL_PREFIX}{name}")
}

/// Encode a generation manifest.
pub fn encode(
    header: &GenerationHeader,
    entries: impl IntoIterator<Item = GenerationEntry>,
) -> Result<Vec<u8>> {
    let mut w = RecordWriter::new(Vec::new(), &manifest_key(header.id), header)?;
    for e in entries {
        w.write(&e)?;
    }
    Ok(w.finish()?)
}

/// Decode a generation manifest (refusing a damaged or truncated one).
pub fn decode(bytes: &[u8], display: &str) -> Result<(GenerationHeader, Vec<GenerationEntry>)> {
    let (h, mut rd): (GenerationHeader, _) =
        RecordReader::new(bytes, display, GENERATION_FORMAT, GENERATION_VERSION)?;
    let mut v = Vec::new();
    while let Some(e) = rd.next_record::<GenerationEntry>()? {
        v.push(e);
    }
    Ok((h, v))
}

/// Read generation `id`'s manifest from `store` as a stream, calling `f` for every entry (in key
/// order); returns the header. Memory stays flat whatever the generation holds.
pub fn read_store(
    store: &dyn hbcp_store::Store,
    id: u64,
    mut f: impl FnMut(GenerationEntry) -> Result<()>,
) -> Result<GenerationHeader> {
    let key = manifest_key(id);
    let size = manifest_size(store, &key)?;
    let (h, mut rd): (GenerationHeader, _) = RecordReader::new(
        hbcp_state::manifest::StoreReader::new(store, &key, size),
        &key,
        GENERATION_FORMAT,
        GENERATION_VERSION,
    )?;
    while let Some(e) = rd.next_record::<GenerationEntry>()? {
        f(e)?;
    }
    Ok(h)
}

/// The header of generation `id` (the first lines of its manifest only).
pub fn read_header(store: &dyn hbcp_store::Store, id: u64) -> Result<GenerationHeader> {
    let key = manifest_key(id);
    let size = manifest_size(store, &key)?;
    let (h, _): (GenerationHeader, _) = RecordReader::new(
        hbcp_state::manifest::StoreReader::new(store, &key, size),
        &key,
        GENERATION_FORMAT,
        GENERATION_VERSION,
    )?;
    Ok(h)
}

fn manifest_size(store: &dyn hbcp_store::Store, key: &str) -> Result<u64> {
    match store.head(key)? {
        Some(e) => Ok(e.size),
        None => Err(hbcp_store::Error::NotFound {
            key: key.to_string(),
        }
        .into()),
    }
}

/// The entries of a generation manifest read from a local file, as an iterator (for the
/// verifier's parallel walk). A read error ends the iteration and is kept: check
/// [`FileEntries::error`] after it.
pub struct FileEntries {
    rd: RecordReader<std::fs::File>,
    error: std::sync::Arc<std::sync::Mutex<Option<crate::Error>>>,
}

impl FileEntries {
    /// Open a generation manifest written locally; returns its header and entries.
    pub fn open(path: &std::path::Path) -> Result<(GenerationHeader, Self)> {
        let (h, rd) = RecordReader::open(path, GENERATION_FORMAT, GENERATION_VERSION)?;
        Ok((
            h,
            FileEntries {
                rd,
                error: Default::default(),
            },
        ))
    }

    /// Where a read error is kept (take it after the iteration).
    pub fn error(&self) -> std::sync::Arc<std::sync::Mutex<Option<crate::Error>>> {
        self.error.clone()
    }
}

impl Iterator for FileEntries {
    type Item = GenerationEntry;
    fn next(&mut self) -> Option<GenerationEntry> {
        match self.rd.next_record::<GenerationEntry>() {
            Ok(e) => e,
            Err(e) => {
                *self.error.lock().unwrap() = Some(e.into());
                None
            }
        }
    }
}

/// Create a local generation manifest file (sent to the target with
/// [`hbcp_state::manifest::upload_file`], in parts when large).
pub fn create(
    path: &std::path::Path,
    header: &GenerationHeader,
) -> Result<RecordWriter<std::io::BufWriter<std::fs::File>>> {
    Ok(RecordWriter::create(path, header)?)
}

/// Copy the entries of the local generation manifest `from` to a new one at `to` under
/// `header` (a manifest whose counts and finish time are known only after its entries were
/// written); returns the number of entries.
pub fn rewrite(
    from: &std::path::Path,
    to: &std::path::Path,
    header: &GenerationHeader,
) -> Result<u64> {
    let (_, mut rd): (GenerationHeader, _) =
        RecordReader::open(from, GENERATION_FORMAT, GENERATION_VERSION)?;
    let mut w = create(to, header)?;
    while let Some(e) = rd.next_record::<GenerationEntry>()? {
        w.write(&e)?;
    }
    let n = w.records();
    w.finish()?;
    Ok(n)
}

/// What a prune does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Generations kept (ascending).
    pub kept: Vec<u64>,
    /// Generations removed (ascending): those beyond `keep` and those already tombstoned.
    pub pruned: Vec<u64>,
    /// Stored keys to delete: named by a pruned generation and by no kept one.
    pub delete: BTreeSet<String>,
}

/// Which generations a backup target keeps, with restic's meaning of `forget --keep-*`: the
/// newest `last` generations; for each of the newest `hourly` hours (`daily` days, `weekly` ISO
/// weeks, `monthly` months, in UTC) that have a generation, the newest generation of that
/// period. A generation kept by any rule is kept; the newest is always kept. No rule at all keeps
/// everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Newest N generations.
    pub last: Option<usize>,
    /// Newest generation of each of the last N hours that have one.
    pub hourly: Option<usize>,
    /// … days.
    pub daily: Option<usize>,
    /// … ISO weeks.
    pub weekly: Option<usize>,
    /// … months.
    pub monthly: Option<usize>,
}

impl Retention {
    /// True when no rule is given (nothing is pruned).
    pub fn is_empty(&self) -> bool {
        self.rules().iter().all(|r| r.is_none())
    }
    fn rules(&self) -> [Option<usize>; 5] {
        [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
        ]
    }
}

/// The period of rule `rule` (0 last … 4 monthly) that time `t` (seconds since the epoch, UTC)
/// falls in; `id` makes every generation its own period for `last`.
fn period(rule: usize, id: u64, t: i64) -> i64 {
    use chrono::Datelike;
    let date = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
    match rule {
        0 => id as i64,
        1 => t.div_euclid(3600),
        2 => t.div_euclid(86_400),
        3 => {
            let w = date.iso_week();
            i64::from(w.year()) * 100 + i64::from(w.week())
        }
        _ => i64::from(date.year()) * 12 + i64::from(date.month0()),
    }
}

/// The generations `r` keeps of `gens` (id, time in seconds since the epoch; ids grow with time).
pub fn retain(gens: &[(u64, i64)], r: &Retention) -> BTreeSet<u64> {
    if r.is_empty() {
        return gens.iter().map(|g| g.0).collect();
    }
    let mut newest_first = gens.to_vec();
    newest_first.sort_by_key(|g| std::cmp::Reverse(g.0));
    let mut left = r.rules().map(|n| n.unwrap_or(0));
    let mut last: [Option<i64>; 5] = [None; 5];
    let mut kept = BTreeSet::new();
    if let Some(g) = newest_first.first() {
        kept.insert(g.0);
    }
    for &(id, t) in &newest_first {
        for rule in 0..5 {
            if left[rule] == 0 {
                continue;
            }
            let p = period(rule, id, t);
            if last[rule] != Some(p) {
                last[rule] = Some(p);
                left[rule] -= 1;
                kept.insert(id);
            }
        }
    }
    kept
}

/// Which generations to keep (those of `ids` not tombstoned that `r` keeps, given each one's
/// time in `times`) and which to remove (the other `ids`, tombstoned ones included), both
/// ascending.
pub fn keep_split(
    ids: &BTreeSet<u64>,
    tombstoned: &BTreeSet<u64>,
    times: &BTreeMap<u64, i64>,
    r: &Retention,
) -> (Vec<u64>, Vec<u64>) {
    let visible: Vec<(u64, i64)> = ids
        .iter()
        .copied()
        .filter(|id| !tombstoned.contains(id))
        .map(|id| (id, times.get(&id).copied().unwrap_or(0)))
        .collect();
    let keep = retain(&visible, r);
    let kept: Vec<u64> = keep.iter().copied().collect();
    let pruned: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !keep.contains(id))
        .collect();
    (kept, pruned)
}

/// Which generations and stored keys to remove so that the generations `r` keeps remain (the
/// model of a prune, in memory; `hbcp backup` computes the same with maps on disk). `gens` maps
/// each generation (visible or tombstoned) to the stored keys its manifest names, `times` each
/// to its time; `tombstoned` generations are removed whatever `r` says (a prune that was
/// interrupted). A key named by any kept generation is never in `delete`.
pub fn prune_plan(
    gens: &BTreeMap<u64, BTreeSet<String>>,
    tombstoned: &BTreeSet<u64>,
    times: &BTreeMap<u64, i64>,
    r: &Retention,
) -> PrunePlan {
    let ids: BTreeSet<u64> = gens.keys().copied().collect();
    let (kept, pruned) = keep_split(&ids, tombstoned, times, r);
    let needed: BTreeSet<&String> = kept.iter().flat_map(|id| gens[id].iter()).collect();
    let delete = pruned
        .iter()
        .flat_map(|id| gens[id].iter())
        .filter(|k| !needed.contains(k))
        .cloned()
        .collect();
    PrunePlan {
        kept,
        pruned,
        delete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_round_trip_and_strangers_are_ignored() {
        assert_eq!(
            parse_key(&manifest_key(12)),
            Some(GenerationKey::Manifest(12))
        );
        assert_eq!(
            parse_key(&tombstone_key(3)),
            Some(GenerationKey::Tombstone(3))
        );
        for k in [
            "generations/x.manifest.zst",
            "generations/01.manifest.zst",
            "generations/.manifest.zst",
            "generations/1.manifest.zst.tmp",
            "pool/1.manifest.zst",
        ] {
            assert_eq!(parse_key(k), None, "{k}");
        }
    }

    #[test]
    fn manifest_round_trips_and_damage_is_refused() {
        let h = GenerationHeader {
            format: GENERATION_FORMAT.into(),
            version: GENERATION_VERSION,
            id: 4,
            files: 1,
            ..Default::default()
        };
        let e = GenerationEntry {
            k: "hbase.version".into(),
            s: 7,
            h: Some("00000000000000ff".into()),
            d: false,
            at: Some(file_key(4, "hbase.version")),
        };
        let b = encode(&h, [e.clone()]).unwrap();
        let (h2, v) = decode(&b, "m").unwrap();
        assert_eq!((h2, v), (h, vec![e]));
        assert!(decode(&b[..b.len() - 3], "m").is_err());
    }

    /// A small model of a backup target over random histories: files are added, rewritten in
    /// place and removed at the source; a backup stores what no earlier generation stored; a
    /// prune applies [`prune_plan`]. After every step, every kept generation can be restored:
    /// each stored key it names is still in the store.
    #[derive(Debug, Clone)]
    enum Op {
        Add(u8),
        Rewrite(u8),
        Remove(u8),
        /// A backup, this many seconds after the previous one.
        Backup(i64),
        Prune(Retention),
        Interrupted(Retention),
    }

    fn policy() -> impl Strategy<Value = Retention> {
        let rule = || proptest::option::of(1usize..5);
        (rule(), rule(), rule(), rule(), rule()).prop_map(
            |(last, hourly, daily, weekly, monthly)| Retention {
                last,
                hourly,
                daily,
                weekly,
                monthly,
            },
        )
    }

    /// What restic's rules mean, checked from the outside: the newest generation is kept; for
    /// every rule, the newest generation of each of its newest N periods is kept; nothing else.
    fn check_retention(
        visible: &[(u64, i64)],
        r: &Retention,
        kept: &[u64],
    ) -> Result<(), TestCaseError> {
        let mut want = BTreeSet::new();
        if r.is_empty() {
            want.extend(visible.iter().map(|g| g.0));
        } else {
            want.extend(visible.iter().map(|g| g.0).max());
            for (rule, n) in r.rules().iter().enumerate() {
                let Some(n) = n else { continue };
                let mut newest: BTreeMap<i64, u64> = BTreeMap::new();
                for &(id, t) in visible {
                    let p = period(rule, id, t);
                    let e = newest.entry(p).or_insert(id);
                    *e = (*e).max(id);
                }
                want.extend(newest.values().rev().take(*n));
            }
        }
        prop_assert_eq!(kept.iter().copied().collect::<BTreeSet<_>>(), want);
        Ok(())
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => any::<u8>().prop_map(|x| Op::Add(x % 16)),
            2 => any::<u8>().prop_map(|x| Op::Rewrite(x % 16)),
            2 => any::<u8>().prop_map(|x| Op::Remove(x % 16)),
            // Minutes to weeks apart: hours, days, weeks and months all matter.
            3 => prop_oneof![0i64..7200, 0i64..200_000, 0i64..3_000_000].prop_map(Op::Backup),
            2 => policy().prop_map(Op::Prune),
            1 => policy().prop_map(Op::Interrupted),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn pruning_by_policy_keeps_what_restic_would_and_never_deletes_what_a_kept_generation_needs(ops in proptest::collection::vec(op(), 1..60)) {
            // Source: key → (is_hfile, content version).
            let mut src: BTreeMap<String, (bool, u32)> = BTreeMap::new();
            let mut version = 0u32;
            // Store: stored key → content; generations: id → (key → stored key).
            let mut store: BTreeMap<String, (String, u32)> = BTreeMap::new();
            let mut gens: BTreeMap<u64, BTreeMap<String, String>> = BTreeMap::new();
            let mut tomb: BTreeSet<u64> = BTreeSet::new();
            let mut next = 1u64;
            let mut now = 1_700_000_000i64;
            let mut times: BTreeMap<u64, i64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Add(i) => {
                        version += 1;
                        // HFiles get a new unique name each time (flushes never reuse one).
                        let hf = i % 2 == 0;
                        let k = if hf { format!("t/r/cf/{i}-{version}") } else { format!("t/meta{i}") };
                        src.insert(k, (hf, version));
                    }
                    Op::Rewrite(i) => {
                        version += 1;
                        if let Some(v) = src.get_mut(&format!("t/meta{i}")) { v.1 = version; }
                    }
                    Op::Remove(i) => {
                        let k = src.keys().nth(i as usize % src.len().max(1)).cloned();
                        if let Some(k) = k { src.remove(&k); }
                    }
                    Op::Backup(gap) => {
                        let id = next;
                        next += 1;
                        now += gap;
                        times.insert(id, now);
                        let mut g = BTreeMap::new();
                        for (k, (hf, v)) in &src {
                            let at = if *hf {
                                pool_key(k.rsplit('/').next().unwrap())
                            } else {
                                // Reuse the newest visible generation's copy when unchanged.
                                let prev = gens.iter().rev()
                                    .filter(|(id, _)| !tomb.contains(id))
                                    .find_map(|(_, g)| g.get(k))
                                    .filter(|at| store.get(*at).map(|c| c.1) == Some(*v));
                                prev.cloned().unwrap_or_else(|| file_key(id, k))
                            };
                            store.entry(at.clone()).or_insert((k.clone(), *v));
                            prop_assert_eq!(&store[&at], &(k.clone(), *v), "stored content");
                            g.insert(k.clone(), at);
                        }
                        gens.insert(id, g);
                    }
                    Op::Prune(r) | Op::Interrupted(r) => {
                        let sets = gens.iter().map(|(id, g)| (*id, g.values().cloned().collect())).collect();
                        let plan = prune_plan(&sets, &tomb, &times, &r);
                        let visible: Vec<(u64, i64)> = gens.keys().filter(|id| !tomb.contains(id)).map(|id| (*id, times[id])).collect();
                        check_retention(&visible, &r, &plan.kept)?;
                        for id in &plan.pruned { tomb.insert(*id); }
                        if matches!(op, Op::Interrupted(_)) {
                            // Stopped after the tombstones and half the deletions.
                            for k in plan.delete.iter().step_by(2) { store.remove(k); }
                        } else {
                            for k in &plan.delete { store.remove(k); }
                            for id in &plan.pruned { gens.remove(id); tomb.remove(id); }
                        }
                    }
                }
                for (id, g) in &gens {
                    if tomb.contains(id) { continue; }
                    for (k, at) in g {
                        prop_assert!(store.contains_key(at), "generation {} lost {} (stored at {})", id, k, at);
                    }
                }
            }
            // Nothing stored is unreachable once every prune finished.
            let sets = gens.iter().map(|(id, g)| (*id, g.values().cloned().collect())).collect();
            let plan = prune_plan(&sets, &tomb, &times, &Retention::default());
            for k in &plan.delete { store.remove(k); }
            let named: BTreeSet<&String> = gens.iter().filter(|(id, _)| !tomb.contains(id)).flat_map(|(_, g)| g.values()).collect();
            let tombed: BTreeSet<&String> = gens.iter().filter(|(id, _)| tomb.contains(id)).flat_map(|(_, g)| g.values()).collect();
            for k in store.keys() {
                prop_assert!(named.contains(k) || !tombed.contains(k), "{} kept for nothing", k);
            }
        }
    }

    #[test]
    fn retention_keeps_the_newest_of_each_hour_day_week_and_month() {
        // 2026-01-30T22:00Z (a Friday) and then every 12 hours: 1 … 8.
        let t0 = 1_769_810_400;
        let gens: Vec<(u64, i64)> = (0..8).map(|i| (i + 1, t0 + i as i64 * 43_200)).collect();
        let r = |f: fn(&mut Retention)| {
            let mut r = Retention::default();
            f(&mut r);
            retain(&gens, &r).into_iter().collect::<Vec<_>>()
        };
        // Days: 30 Jan (1), 31 Jan (2, 3), 1 Feb (4, 5), 2 Feb (6, 7), 3 Feb (8).
        assert_eq!(r(|r| r.daily = Some(3)), vec![5, 7, 8]);
        // ISO weeks: 1–5 in the week of 26 Jan, 6–8 in the week of 2 Feb.
        assert_eq!(r(|r| r.weekly = Some(5)), vec![5, 8]);
        // Months: January 1–3, February 4–8.
        assert_eq!(r(|r| r.monthly = Some(1)), vec![8]);
        assert_eq!(r(|r| r.monthly = Some(2)), vec![3, 8]);
        // Rules add up; hours: each generation is its own hour.
        assert_eq!(
            r(|r| {
                r.last = Some(2);
                r.monthly = Some(2);
            }),
            vec![3, 7, 8]
        );
        assert_eq!(r(|r| r.hourly = Some(3)), vec![6, 7, 8]);
        // No rule: everything.
        assert_eq!(r(|_| {}).len(), 8);
    }

    #[test]
    fn prune_keeps_the_newest_and_shared_keys() {
        let mut g = BTreeMap::new();
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        g.insert(1, set(&["pool/a", "files/1/m"]));
        g.insert(2, set(&["pool/a", "pool/b", "files/1/m"]));
        g.insert(3, set(&["pool/b", "files/3/m"]));
        let none = BTreeMap::new();
        let last = |n| Retention {
            last: Some(n),
            ..Default::default()
        };
        let p = prune_plan(&g, &BTreeSet::new(), &none, &last(2));
        assert_eq!(p.kept, vec![2, 3]);
        assert_eq!(p.pruned, vec![1]);
        assert!(p.delete.is_empty(), "{p:?}");
        let p = prune_plan(&g, &BTreeSet::new(), &none, &last(1));
        assert_eq!(p.pruned, vec![1, 2]);
        assert_eq!(p.delete, set(&["files/1/m", "pool/a"]));
        // A tombstoned generation goes even when keep would hold it.
        let p = prune_plan(&g, &[3].into_iter().collect(), &none, &last(5));
        assert_eq!((p.kept, p.pruned), (vec![1, 2], vec![3]));
        assert_eq!(p.delete, set(&["files/3/m"]));
    }
}
