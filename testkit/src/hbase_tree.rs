//! A generator of realistic HBase 2.x root folders.
//!
//! What is real: the layout (`data/<ns>/<table>/<region>/<family>/<hfile>`, `archive/`,
//! `.hbase-snapshot/`, `WALs/`, `oldWALs/`, `MasterProcWALs/`, `.tmp/`), the names (region dirs
//! are the md5 of `table,startKey,regionId` as HBase computes them; HFiles are 32 lowercase hex
//! digits; HFileLinks `table=region-hfile`; References `hfile.parentRegion`; WAL names with
//! `%2C`), and the small files' encodings (`hbase.version`, `hbase.id`, `.regioninfo`,
//! `.tableinfo`, Reference, `.snapshotinfo`, `data.manifest`, WAL header and `LAWP` trailer).
//! What is not: an HFile's blocks are pseudo-random bytes (the first 8 are `DATABLK*`); only its
//! last 4 KiB are a well-formed v3.3 trailer (`TRABLK"$`, a delimited `FileTrailerProto` whose
//! offsets lie inside the file and whose total_uncompressed_bytes is the size before the
//! trailer, zero padding, then the version word `03 00 00 03`, i.e. big-endian minor 3 << 24 | major 3),
//! so a trailer check passes and a block walk, a block checksum or a file-info read does not.
//! An "HFile" smaller than 4097 bytes (the 0- and 1-byte boundary sizes) has no room for a
//! trailer and is plain pseudo-random bytes, as a crashed flush leaves. Everything is
//! deterministic for a seed. Randomness is an inline splitmix64: tests need repeatability and
//! the benchmarks need gigabytes a second, not statistical quality, and it costs no crate.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use md5::{Digest, Md5};

use crate::pb::{Msg, pbuf};

/// Fast deterministic bytes (splitmix64): no cryptographic quality needed, only speed and
/// repeatability, so no RNG crate.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    /// Fill `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    /// A 32-hex-digit name, as HBase names HFiles.
    pub fn hex32(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

/// The md5-hex encoded region name HBase uses as the region's folder name.
pub fn encoded_region_name(table: &str, start_key: &[u8], region_id: u64) -> String {
    let mut h = Md5::new();
    h.update(table.as_bytes());
    h.update(b",");
    h.update(start_key);
    h.update(b",");
    h.update(region_id.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A table to generate.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// Namespace.
    pub ns: String,
    /// Qualifier.
    pub name: String,
    /// Regions (key ranges split evenly over `0000`..`ffff`).
    pub regions: u32,
    /// Column families.
    pub families: Vec<String>,
    /// HFiles per family.
    pub files_per_family: u32,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// User tables.
    pub tables: Vec<TableSpec>,
    /// HFile sizes are drawn from this list in turn (bytes). Sizes under 4 KiB + 1 are raised
    /// to hold the trailer.
    pub hfile_sizes: Vec<u64>,
    /// Add a snapshot of the first table, a clone with HFileLinks, a split with References,
    /// archived HFiles, WALs and the other folders of a live root.
    pub extras: bool,
}

impl Spec {
    /// Sizes at the boundaries of `range` (at least 2): r−1, r, r+1, k·r, k·r±1 (k = 3), two
    /// sizes between, then 0 and 1 (last, so short lists of HFiles still get the others).
    pub fn boundary_sizes(range: u64) -> Vec<u64> {
        let range = range.max(2);
        vec![
            range - 1,
            range,
            range + 1,
            3 * range,
            3 * range - 1,
            3 * range + 1,
            5000,
            70_000,
            0,
            1,
        ]
    }

    /// The bundled sample: two namespaces, three tables, a snapshot, links, references, WALs.
    pub fn sample() -> Self {
        Spec {
            tables: vec![
                table("default", "usertable", 3, &["cf"], 2),
                table("default", "events", 2, &["d", "m"], 2),
                table("analytics", "daily", 2, &["f"], 1),
            ],
            hfile_sizes: vec![4200, 9000, 70_000, 150_000, 300_000, 600_000],
            extras: true,
        }
    }
}

/// A table spec.
pub fn table(ns: &str, name: &str, regions: u32, families: &[&str], files: u32) -> TableSpec {
    TableSpec {
        ns: ns.into(),
        name: name.into(),
        regions,
        families: families.iter().map(|f| f.to_string()).collect(),
        files_per_family: files,
    }
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// HFiles written (data and archive).
    pub hfiles: u64,
    /// Tables (`ns:name`).
    pub tables: Vec<String>,
    /// Empty directories made.
    pub empty_dirs: u64,
}

struct Gen<'a> {
    root: &'a Path,
    rng: Rng,
    sum: Summary,
    sizes: Vec<u64>,
    next_size: usize,
}

/// The last 4 KiB of an HFile v3.3: `TRABLK"$`, the delimited `FileTrailerProto`, zero padding,
/// and the version word (minor 3, major 3).
pub fn hfile_trailer(file_size: u64, entries: u64) -> Vec<u8> {
    let body = file_size.saturating_sub(4096);
    // Offsets inside the body in the order HBase writes them (data < load-on-open <= file
    // info < trailer), also for bodies shorter than 256 bytes.
    let proto = Msg::new()
        .uint(1, body.saturating_sub(64).max(body * 3 / 4)) // file_info_offset
        .uint(2, body.saturating_sub(128).max(body / 2)) // load_on_open_data_offset
        .uint(3, 37) // uncompressed_data_index_size
        .uint(4, body) // total_uncompressed_bytes
        .uint(5, 1) // data_index_count
        .uint(6, 0) // meta_index_count
        .uint(7, entries) // entry_count
        .uint(8, 1) // num_data_index_levels
        .uint(9, 0) // first_data_block_offset
        .uint(10, body.saturating_sub(256).max(body / 4)) // last_data_block_offset
        .bytes(11, b"org.apache.hadoop.hbase.KeyValue$KVComparator")
        .uint(12, 2); // compression NONE
    let mut t = b"TRABLK\"$".to_vec();
    t.extend_from_slice(&proto.delimited());
    t.resize(4096 - 4, 0);
    t.extend_from_slice(&0x0300_0003u32.to_be_bytes());
    t
}

fn region_info(ns: &str, table: &str, start: &[u8], end: &[u8], id: u64, split: bool) -> Vec<u8> {
    let tn = Msg::new()
        .bytes(1, ns.as_bytes())
        .bytes(2, table.as_bytes());
    let ri = Msg::new()
        .uint(1, id)
        .msg(2, &tn)
        .bytes(3, start)
        .bytes(4, end)
        .uint(5, split as u64)
        .uint(6, split as u64)
        .uint(7, 0);
    pbuf(&ri.delimited())
}

fn table_schema(ns: &str, table: &str, families: &[String]) -> Msg {
    let tn = Msg::new()
        .bytes(1, ns.as_bytes())
        .bytes(2, table.as_bytes());
    let mut ts = Msg::new().msg(1, &tn);
    for f in families {
        let attr = Msg::new().bytes(1, b"VERSIONS").bytes(2, b"1");
        ts = ts.msg(3, &Msg::new().bytes(1, f.as_bytes()).msg(2, &attr));
    }
    ts
}

fn table_string(ns: &str, table: &str) -> String {
    if ns == "default" {
        table.to_string()
    } else {
        format!("{ns}:{table}")
    }
}

/// A region made by the generator.
#[derive(Debug, Clone)]
struct Region {
    enc: String,
    start: Vec<u8>,
    end: Vec<u8>,
    id: u64,
    /// family → HFile names with sizes.
    files: Vec<(String, Vec<(String, u64)>)>,
}

impl Gen<'_> {
    fn write(&mut self, key: &str, data: &[u8]) -> io::Result<()> {
        let p = self.root.join(key);
        fs::create_dir_all(p.parent().expect("key has a parent"))?;
        fs::write(p, data)?;
        self.sum.files += 1;
        self.sum.bytes += data.len() as u64;
        Ok(())
    }

    fn empty_dir(&mut self, key: &str) -> io::Result<()> {
        fs::create_dir_all(self.root.join(key))?;
        self.sum.empty_dirs += 1;
        Ok(())
    }

    fn size(&mut self) -> u64 {
        let s = self.sizes[self.next_size % self.sizes.len()];
        self.next_size += 1;
        s
    }

    /// An HFile: random blocks, then the trailer. Written in 1 MiB chunks (memory stays flat).
    /// Below 4097 bytes there is no room for a trailer: random bytes only.
    fn hfile(&mut self, key: &str, size: u64) -> io::Result<()> {
        let p = self.root.join(key);
        fs::create_dir_all(p.parent().expect("key has a parent"))?;
        if size <= 4096 {
            let mut b = vec![0u8; size as usize];
            self.rng.fill(&mut b);
            fs::write(&p, &b)?;
            self.sum.files += 1;
            self.sum.bytes += size;
            self.sum.hfiles += 1;
            return Ok(());
        }
        let mut f = io::BufWriter::with_capacity(1 << 20, File::create(&p)?);
        let body = size - 4096;
        let mut buf = vec![0u8; (1 << 20).min(body as usize).max(1)];
        let mut left = body;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            self.rng.fill(&mut buf[..n]);
            if left == body && n >= 8 {
                buf[..8].copy_from_slice(b"DATABLK*");
            }
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
        f.write_all(&hfile_trailer(size, size / 100))?;
        f.flush()?;
        self.sum.files += 1;
        self.sum.bytes += size;
        self.sum.hfiles += 1;
        Ok(())
    }

    fn table(&mut self, t: &TableSpec) -> io::Result<Vec<Region>> {
        let tdir = format!("data/{}/{}", t.ns, t.name);
        let schema = table_schema(&t.ns, &t.name, &t.families);
        self.write(
            &format!("{tdir}/.tabledesc/.tableinfo.0000000001"),
            &pbuf(&schema.0),
        )?;
        self.empty_dir(&format!("{tdir}/.tmp"))?;
        let tname = table_string(&t.ns, &t.name);
        self.sum.tables.push(format!("{}:{}", t.ns, t.name));
        let id = 1_700_000_000_000 + self.rng.range(0, 1_000_000);
        let mut regions = Vec::new();
        for r in 0..t.regions {
            let key = |i: u32| -> Vec<u8> {
                if i == 0 || i == t.regions {
                    Vec::new()
                } else {
                    format!("{:04x}", i * (0x10000 / t.regions)).into_bytes()
                }
            };
            let (start, end) = (key(r), key(r + 1));
            let enc = encoded_region_name(&tname, &start, id);
            let rdir = format!("{tdir}/{enc}");
            self.write(
                &format!("{rdir}/.regioninfo"),
                &region_info(&t.ns, &t.name, &start, &end, id, false),
            )?;
            self.empty_dir(&format!("{rdir}/recovered.edits"))?;
            let mut files = Vec::new();
            for fam in &t.families {
                let mut names = Vec::new();
                for _ in 0..t.files_per_family {
                    let name = self.rng.hex32();
                    let size = self.size();
                    self.hfile(&format!("{rdir}/{fam}/{name}"), size)?;
                    names.push((name, size));
                }
                files.push((fam.clone(), names));
            }
            regions.push(Region {
                enc,
                start,
                end,
                id,
                files,
            });
        }
        Ok(regions)
    }

    fn snapshot(&mut self, name: &str, t: &TableSpec, regions: &[Region]) -> io::Result<()> {
        let tname = table_string(&t.ns, &t.name);
        let desc = Msg::new()
            .bytes(1, name.as_bytes())
            .bytes(2, tname.as_bytes())
            .uint(3, 1_700_000_500_000)
            .uint(4, 1)
            .uint(5, 2);
        let mut dm = Msg::new().msg(1, &table_schema(&t.ns, &t.name, &t.families));
        for r in regions {
            let tn = Msg::new()
                .bytes(1, t.ns.as_bytes())
                .bytes(2, t.name.as_bytes());
            let ri = Msg::new()
                .uint(1, r.id)
                .msg(2, &tn)
                .bytes(3, &r.start)
                .bytes(4, &r.end);
            let mut rm = Msg::new().uint(1, 2).msg(2, &ri);
            for (fam, names) in &r.files {
                let mut ff = Msg::new().bytes(1, fam.as_bytes());
                for (n, size) in names {
                    ff = ff.msg(2, &Msg::new().bytes(1, n.as_bytes()).uint(3, *size));
                }
                rm = rm.msg(3, &ff);
            }
            dm = dm.msg(2, &rm);
        }
        self.write(&format!(".hbase-snapshot/{name}/.snapshotinfo"), &desc.0)?;
        self.write(&format!(".hbase-snapshot/{name}/data.manifest"), &dm.0)
    }

    fn wal(&mut self, key: &str, closed: bool) -> io::Result<()> {
        let mut w = b"PWAL".to_vec();
        let header = Msg::new()
            .uint(1, 0)
            .bytes(4, b"ProtobufLogWriter")
            .bytes(5, b"org.apache.hadoop.hbase.regionserver.wal.WALCellCodec");
        w.extend_from_slice(&header.delimited());
        if closed {
            // Empty WALTrailer, its size, and the closing magic.
            w.extend_from_slice(&0u32.to_be_bytes());
            w.extend_from_slice(b"LAWP");
        }
        self.write(key, &w)
    }

    fn extras(&mut self, first: &TableSpec, regions: &[Region]) -> io::Result<()> {
        // Archived HFiles of the first region (a past compaction).
        let r0 = &regions[0];
        let (fam, _) = &r0.files[0];
        let arch = format!("archive/data/{}/{}/{}/{fam}", first.ns, first.name, r0.enc);
        for _ in 0..2 {
            let name = self.rng.hex32();
            let size = self.size();
            self.hfile(&format!("{arch}/{name}"), size)?;
        }
        // A snapshot of the first table.
        self.snapshot("snap-1", first, regions)?;
        // A clone of it made of HFileLinks (0 bytes, `table=region-hfile`).
        let clone = TableSpec {
            name: format!("{}_clone", first.name),
            regions: 0,
            ..first.clone()
        };
        let tdir = format!("data/{}/{}", clone.ns, clone.name);
        self.write(
            &format!("{tdir}/.tabledesc/.tableinfo.0000000001"),
            &pbuf(&table_schema(&clone.ns, &clone.name, &clone.families).0),
        )?;
        self.sum.tables.push(format!("{}:{}", clone.ns, clone.name));
        let cid = 1_700_000_900_000;
        let cname = table_string(&clone.ns, &clone.name);
        for r in regions {
            let enc = encoded_region_name(&cname, &r.start, cid);
            self.write(
                &format!("{tdir}/{enc}/.regioninfo"),
                &region_info(&clone.ns, &clone.name, &r.start, &r.end, cid, false),
            )?;
            for (fam, names) in &r.files {
                for (n, _) in names {
                    let link = if first.ns == "default" {
                        format!("{}={}-{n}", first.name, r.enc)
                    } else {
                        format!("{}={}={}-{n}", first.ns, first.name, r.enc)
                    };
                    self.write(&format!("{tdir}/{enc}/{fam}/{link}"), b"")?;
                }
            }
        }
        // A split of the last region: two daughters holding References to the parent's HFiles.
        let parent = regions.last().expect("a region");
        let tname = table_string(&first.ns, &first.name);
        let mid = b"fff0".to_vec();
        let did = parent.id + 1000;
        for (i, (start, end)) in [
            (parent.start.clone(), mid.clone()),
            (mid.clone(), parent.end.clone()),
        ]
        .into_iter()
        .enumerate()
        {
            let enc = encoded_region_name(&tname, &start, did);
            let rdir = format!("data/{}/{}/{enc}", first.ns, first.name);
            self.write(
                &format!("{rdir}/.regioninfo"),
                &region_info(&first.ns, &first.name, &start, &end, did, false),
            )?;
            for (fam, names) in &parent.files {
                for (n, _) in names {
                    let reference = Msg::new().bytes(1, &mid).uint(2, i as u64);
                    self.write(
                        &format!("{rdir}/{fam}/{n}.{}", parent.enc),
                        &pbuf(&reference.0),
                    )?;
                }
            }
        }
        // WALs: a live region server's closed WALs (names full of %2C), archived WALs,
        // procedure WALs, the hbck lock, a bulk-load staging folder, and an operator's file.
        let server = "worker-1.example.net,16020,1700000000123";
        let enc_server = server.replace(',', "%2C");
        for k in 0..2u64 {
            self.wal(
                &format!("WALs/{server}/{enc_server}.{}", 1_700_000_100_000 + k),
                true,
            )?;
        }
        self.wal(
            &format!("WALs/{server}/{enc_server}.meta.1700000100500.meta"),
            true,
        )?;
        self.wal(&format!("oldWALs/{enc_server}.1700000000999"), true)?;
        self.write("MasterProcWALs/pv2-00000000000000000001.log", &[0x01])?;
        self.write(".tmp/hbase-hbck.lock", b"")?;
        self.empty_dir("staging")?;
        self.empty_dir("corrupt")?;
        self.write(
            "notes/operator copy #123 ü=ok.txt",
            "keep me: names with spaces, #, =, ü\n".as_bytes(),
        )?;
        Ok(())
    }
}

/// Write a root folder for `spec` under `root` (which should be empty or absent).
pub fn generate(root: &Path, spec: &Spec, seed: u64) -> io::Result<Summary> {
    let mut g = Gen {
        root,
        rng: Rng::new(seed),
        sum: Summary::default(),
        sizes: if spec.hfile_sizes.is_empty() {
            vec![64 * 1024]
        } else {
            spec.hfile_sizes.clone()
        },
        next_size: 0,
    };
    fs::create_dir_all(root)?;
    g.write("hbase.version", &pbuf(&Msg::new().bytes(1, b"8").0))?;
    let id = format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        g.rng.next_u64() as u32,
        g.rng.next_u64() as u16,
        g.rng.next_u64() as u16,
        g.rng.next_u64() as u16,
        g.rng.next_u64() & 0xffff_ffff_ffff
    );
    g.write("hbase.id", &pbuf(&Msg::new().bytes(1, id.as_bytes()).0))?;
    // hbase:meta (encoded name 1588230740) and hbase:namespace.
    let meta = "data/hbase/meta";
    g.write(
        &format!("{meta}/.tabledesc/.tableinfo.0000000001"),
        &pbuf(&table_schema("hbase", "meta", &["info".into(), "table".into()]).0),
    )?;
    g.write(
        &format!("{meta}/1588230740/.regioninfo"),
        &region_info("hbase", "meta", b"", b"", 1, false),
    )?;
    let s = g.size().max(4097);
    let name = g.rng.hex32();
    g.hfile(&format!("{meta}/1588230740/info/{name}"), s)?;
    let ns_t = TableSpec {
        ns: "hbase".into(),
        name: "namespace".into(),
        regions: 1,
        families: vec!["info".into()],
        files_per_family: 1,
    };
    g.table(&ns_t)?;
    let mut first = None;
    for t in &spec.tables {
        let regions = g.table(t)?;
        if first.is_none() && !regions.is_empty() {
            first = Some((t.clone(), regions));
        }
    }
    if spec.extras {
        if let Some((t, regions)) = first {
            g.extras(&t, &regions)?;
        }
    }
    Ok(g.sum)
}

/// `count` HFiles of random sizes in `lo..=hi`, spread over tables, regions and families, as
/// many small flushes leave them (for the small-files and scale benchmarks).
/// Folders are `data/default/bench<NNN>/<region>/cf{,2}/` (100 files a region, 20 regions a
/// table); there are no `.regioninfo`/`.tableinfo` files, only bulk.
pub fn many_files(root: &Path, count: u64, lo: u64, hi: u64, seed: u64) -> io::Result<Summary> {
    many_files_in(root, "bench", count, lo, hi, seed)
}

/// [`many_files`] with tables named `<prefix><NNN>`.
pub fn many_files_in(
    root: &Path,
    prefix: &str,
    count: u64,
    lo: u64,
    hi: u64,
    seed: u64,
) -> io::Result<Summary> {
    let (lo, hi) = (lo.min(hi), hi.max(lo));
    let mut rng = Rng::new(seed);
    let mut sum = Summary::default();
    let mut buf = vec![0u8; hi as usize];
    let regions_per_table = 20u64;
    let files_per_region = 100u64;
    for i in 0..count {
        let region = i / files_per_region;
        let table = region / regions_per_table;
        let h = region.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let dir = root.join(format!(
            "data/default/{prefix}{table:03}/{h:016x}{:016x}/{}",
            h.rotate_left(17),
            if i % 2 == 0 { "cf" } else { "cf2" }
        ));
        if i % files_per_region < 2 {
            fs::create_dir_all(&dir)?;
        }
        let size = if hi == 0 { 0 } else { rng.range(lo, hi) } as usize;
        rng.fill(&mut buf[..size]);
        fs::write(dir.join(rng.hex32()), &buf[..size])?;
        sum.files += 1;
        sum.bytes += size as u64;
    }
    Ok(sum)
}

/// `count` large HFiles of `size` bytes (for the large-file benchmark).
pub fn large_files(root: &Path, count: u64, size: u64, seed: u64) -> io::Result<Summary> {
    large_files_in(root, "big", count, size, seed)
}

/// [`large_files`] in table `default:<table>`.
pub fn large_files_in(
    root: &Path,
    table: &str,
    count: u64,
    size: u64,
    seed: u64,
) -> io::Result<Summary> {
    let mut g = Gen {
        root,
        rng: Rng::new(seed),
        sum: Summary::default(),
        sizes: vec![size],
        next_size: 0,
    };
    for i in 0..count {
        let name = g.rng.hex32();
        g.hfile(
            &format!("data/default/{table}/{:032x}/cf/{name}", i + 1),
            size.max(4097),
        )?;
    }
    Ok(g.sum)
}
