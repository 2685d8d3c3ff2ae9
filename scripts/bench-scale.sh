#!/usr/bin/env bash
# Scale benchmark: does hbcp stay small and fast with millions of files?
#   scripts/bench-scale.sh                  # sizes 100000 1000000 10000000 (or the largest that fits)
#   scripts/bench-scale.sh 100000 1000000   # given sizes
#   AZURITE_N=100000 scripts/bench-scale.sh 100000   # also N objects to and from Azurite
#   AZURITE_SQL=1 AZURITE_N=1000000 scripts/bench-scale.sh none   # a 1 M-object listing (below)
#   BENCH_DIR=/mnt/x HBCP=/path/hbcp GEN=/path/hbcp-gen SKIP_BUILD=1 ...
#   SCALE_FS=loop scripts/bench-scale.sh 10000000   # on a fresh ext4 loop image (needs root)
# For every size N: `hbcp-gen --preset scale` writes N empty files in an HBase-like layout
# (data/default/TABLE/REGION/FAMILY/HFILE: 20 regions a table, 2 families, 50 files each), kept
# between runs; then `hbcp plan` (files per minute, peak RSS) and `hbcp copy` with the default
# checksum verification (wall time, peak RSS) to a fresh local target. Peak RSS is
# /usr/bin/time's %M. A size whose source and copy would not fit in the free inodes or space
# of BENCH_DIR is cut to the largest that does, and the table says so. With AZURITE_N, the
# N-file set is copied to an Azurite container (started on AZURITE_PORT, default 10200) and then
# planned from it (a listing of N objects). With AZURITE_SQL=1, Azurite keeps its metadata in
# MariaDB (scripts/mariadb.sh, port MARIADB_PORT, default 3399): AZURITE_SEED (2000) files go up
# through hbcp and the Blob API, the rest of the N blobs are their rows cloned by SQL, so that a
# million-object container is loaded in a minute, not Azurite's three hours of PUTs. With
# AZURITE_PEERS=1 the same container is also listed by `azcopy list` and `rclone size`.
# With SCALE_FS=loop (root only) the benchmark runs on a sparse ext4 image made for it, so that
# the root file system's inode count does not cut the size: the image (SCALE_IMG, default
# /var/tmp/hbcp-scale.img) gets inodes for two copies of the largest size (`mkfs.ext4 -N`), is
# mounted with `mount -o loop` on a temporary folder that becomes BENCH_DIR, and is unmounted and
# deleted at exit (KEEP_IMG=1 keeps it, and a kept image is mounted again as it is, with its
# generated sets, by the next run). Its size grows with what is written (inode tables, folders,
# the journal): about 0.7 GB per million files, both copies, plus 2 GiB.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-/tmp/hbcp-scale}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100000 1000000 10000000)
# `none`: no local size (only the Azurite listing)
[ "${SIZES[0]}" != none ] || SIZES=()
. scripts/lib.sh
bench_setup
cleanups=()
cleanup() { local c; for c in "${cleanups[@]}"; do eval "$c" || true; done; }
trap cleanup EXIT
if [ "${SCALE_FS:-}" = loop ]; then
  [ "$(id -u)" -eq 0 ] || { echo "SCALE_FS=loop needs root (mkfs.ext4, mount -o loop)" >&2; exit 2; }
  IMG=${SCALE_IMG:-/var/tmp/hbcp-scale.img}
  max=0; for s in "${SIZES[@]}"; do [ "$s" -gt "$max" ] && max=$s; done
  # inodes: two copies of the largest set and its folders (2% of the files), the 10% that fit
  # keeps free, and some to spare.
  # ext4 holds at most one inode per 4 KiB block, so the image's nominal size is inodes x 4 KiB;
  # what it grows to on disk (grow) is its 256-byte inodes, a 4 KiB block per folder, the
  # journal and 1 GiB of room.
  inodes=$(( max * 204 / 100 * 100 / 88 + 100000 ))
  bytes=$(( inodes * 4096 ))
  grow=$(( inodes * 256 + max * 4 / 100 * 4096 + (2 << 30) ))
  if [ ! -f "$IMG" ]; then
    avail=$(df --output=avail -B1 "$(dirname "$IMG")" | tail -1 | tr -d ' ')
    if [ "$grow" -gt $(( avail * 9 / 10 )) ]; then
      echo "SCALE_FS=loop: an image for $max files may grow to $(( grow >> 30 )) GiB; $(( avail >> 30 )) GiB free at $(dirname "$IMG")" >&2
      exit 2
    fi
    truncate -s "$bytes" "$IMG"
    # the inode tables are left to be written as they are used (no lazy init thread at mount),
    # so the sparse image only grows with the files written into it
    mkfs.ext4 -q -F -N "$inodes" -m 0 -E lazy_itable_init=1,lazy_journal_init=1 "$IMG"
  fi
  [ -n "${KEEP_IMG:-}" ] || cleanups+=("rm -f '$IMG'")
  DIR=$(mktemp -d /tmp/hbcp-scale-mnt.XXXXXX)
  mount -o loop,noinit_itable "$IMG" "$DIR"
  cleanups=("umount '$DIR' && rmdir '$DIR'" "${cleanups[@]}")
  echo "SCALE_FS=loop: $IMG ($(( bytes >> 30 )) GiB sparse, up to $(( grow >> 30 )) GiB on disk, $inodes inodes) on $DIR" >&2
fi
mkdir -p "$DIR"
echo "disk: $(df -h --output=avail "$DIR" | tail -1 | tr -d ' ') free, $(df --output=iavail "$DIR" | tail -1 | tr -d ' ') inodes free" >&2

# fit N: the largest size <= N whose source (if not there yet) and copy fit in the free inodes
# (files + 2% folders, each side) with 10% to spare.
fit() {
  local n=$1 free need
  free=$(df --output=iavail "$DIR" | tail -1 | tr -d ' ')
  if [ -f "$DIR/src-$n.done" ]; then need=$(( n * 102 / 100 )); else need=$(( n * 204 / 100 )); fi
  if [ "$need" -le $(( free * 9 / 10 )) ]; then echo "$n"; return; fi
  if [ -f "$DIR/src-$n.done" ]; then echo $(( free * 9 / 10 * 100 / 102 / 100000 * 100000 )); return; fi
  echo $(( free * 9 / 10 * 100 / 204 / 100000 * 100000 ))
}
per_min() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.2f M", n / (s > 0 ? s : 0.01) * 60 / 1e6 }'; }
fresh_target() { rm -rf "${DIR:?}/dst" "${DIR:?}/state" "$DIR/plan.zst"; sync; }

rows=()
for want in "${SIZES[@]}"; do
  n=$(fit "$want")
  note=""
  if [ "$n" -lt "$want" ]; then
    note=" (asked $want: source and copy of more do not fit in the free inodes)"
    echo "size $want does not fit; measuring $n" >&2
  fi
  [ "$n" -gt 0 ] || { echo "no room for any size" >&2; exit 1; }
  gen "$n"
  fresh_target
  echo "plan $n" >&2
  measure plan "$HBCP" plan "$DIR/src-$n" "$DIR/dst" --out "$DIR/plan.zst"
  plan_s=$SECS plan_rss=$RSS_MIB
  echo "copy $n" >&2
  measure copy "$HBCP" copy "$DIR/src-$n" "$DIR/dst" --progress none --state "$DIR/state"
  copy_s=$SECS copy_rss=$RSS_MIB
  copied=$(find "$DIR/dst" -type f -not -path '*/.hbcp/*' | wc -l)
  [ "$copied" -eq "$n" ] || { echo "copied $copied files, expected $n" >&2; exit 1; }
  rows+=("| local | $n$note | $plan_s s | $(per_min "$n" "$plan_s") | $plan_rss MiB | $copy_s s | $(per_min "$n" "$copy_s") | $copy_rss MiB |")
  echo "${rows[-1]}" >&2   # each row as soon as it is measured: a run stopped later keeps it
  # a loop image deleted at exit takes the last target with it, faster than removing its files
  [ "$want" = "${SIZES[-1]}" ] && [ "${SCALE_FS:-}" = loop ] && [ -z "${KEEP_IMG:-}" ] || fresh_target
done

if [ -n "${AZURITE_N:-}" ]; then
  n=$AZURITE_N
  port=${AZURITE_PORT:-10200}
  container=scale$$
  seed=$n
  if [ -n "${AZURITE_SQL:-}" ]; then
    # Azurite keeps its blob metadata in MariaDB; hbcp uploads a seed set through the Blob API
    # and SQL clones its rows to N blobs (Azurite's own store takes ~100 PUTs/s: 3 h a million).
    dbport=${MARIADB_PORT:-3399}
    eval "$(PORT=$dbport bash scripts/mariadb.sh start)"
    cleanups=("PORT=$dbport bash scripts/mariadb.sh stop" "${cleanups[@]}")
    PORT=$dbport bash scripts/mariadb.sh sql "CREATE DATABASE azurite_$$"
    export AZURITE_DB="${HBCP_MARIADB}azurite_$$"
    seed=$(( n < ${AZURITE_SEED:-2000} ? n : ${AZURITE_SEED:-2000} ))
  fi
  gen "$seed"
  eval "$(PORT=$port bash scripts/azurite.sh start)"
  cleanups=("PORT=$port bash scripts/azurite.sh stop" "${cleanups[@]}")
  blob="$HBCP_TEST_AZURITE/devstoreaccount1/$container/hbase"
  rm -rf "$DIR/state"
  echo "copy $seed files to Azurite" >&2
  measure azcopy "$HBCP" copy "$DIR/src-$seed" "$blob" --progress none --state "$DIR/state"
  up_s=$SECS up_rss=$RSS_MIB
  up_note="$up_s s (local → Azurite)"
  if [ "$seed" -lt "$n" ]; then
    more=$(( n - seed )) t0=$SECONDS
    echo "clone $more blob rows by SQL" >&2
    # empty HFiles of 500 tables x 20 regions x 2 families; each row a copy of a seed HFile's
    # (same empty content), with its own name and ETag
    PORT=$dbport bash scripts/mariadb.sh sql "USE azurite_$$;
      INSERT INTO Blobs (accountName, containerName, blobName, snapshot, lastModified,
        creationTime, accessTierChangeTime, accessTierInferred, etag, blobType,
        blobSequenceNumber, accessTier, contentProperties, lease, deleting, isCommitted,
        persistency, committedBlocksInOrder, metadata, blobTags)
      SELECT b.accountName, b.containerName,
        CONCAT('hbase/data/default/bulk', LPAD(q.seq DIV 2000, 4, '0'), '/',
               LPAD(HEX(q.seq DIV 100 MOD 20 + 4096), 32, '0'), '/cf', q.seq MOD 2, '/',
               LPAD(HEX(q.seq), 32, '0')),
        '', b.lastModified, b.creationTime, b.accessTierChangeTime, b.accessTierInferred,
        CONCAT('\"0x8DB', LPAD(HEX(q.seq), 12, '0'), '\"'), b.blobType, b.blobSequenceNumber,
        b.accessTier, b.contentProperties, b.lease, 0, 1, b.persistency,
        b.committedBlocksInOrder, b.metadata, b.blobTags
      FROM seq_1_to_$more q
      JOIN (SELECT * FROM Blobs WHERE containerName = '$container'
              AND blobName LIKE 'hbase/data/%' AND contentProperties LIKE '%\"contentLength\":0,%'
              LIMIT 1) b;"
    up_note="$up_s s ($seed files local → Azurite; $more more rows by SQL in $(( SECONDS - t0 )) s)"
  fi
  echo "plan from Azurite ($n objects listed)" >&2
  rm -f "$DIR/plan.zst"
  # Azurite's SQL store fills a delimited List Blobs page by reading the matching rows from the
  # first with a growing OFFSET, so a delimited listing of a million-blob container is
  # quadratic (a page took over 60 s); with the SQL store the listing is one sequential paged
  # one unless AZURITE_LIST_CONCURRENCY says otherwise.
  lc=${AZURITE_LIST_CONCURRENCY:-${AZURITE_SQL:+1}}
  measure azplan env ${lc:+HBCP_LIST_CONCURRENCY=$lc} "$HBCP" plan "$blob" "$DIR/dst" --out "$DIR/plan.zst"
  listed=$(sed -n 's/^files: //p' "$DIR/azplan.out")
  [ "$listed" = "$n" ] || { echo "the plan has $listed files, expected $n" >&2; exit 1; }
  rows+=("| Azurite${AZURITE_SQL:+ (MariaDB store)} | $n | $SECS s (plan: listing $n objects${lc:+, $lc LIST in flight}) | $(per_min "$n" "$SECS") | $RSS_MIB MiB | $up_note | $(per_min "$seed" "$up_s") | $up_rss MiB |")
  echo "${rows[-1]}" >&2
  if [ -n "${AZURITE_PEERS:-}" ]; then
    # The same listing by the peers: `azcopy list` and `rclone size` (both list every blob).
    peer_tools rclone
    sas=$(azurite_sas)
    export AZCOPY_LOG_LOCATION=$DIR/azlogs AZCOPY_JOB_PLAN_LOCATION=$DIR/azplans AZCOPY_DISABLE_SYSLOG=true
    url="$HBCP_TEST_AZURITE/devstoreaccount1/$container"
    # every blob of the container: the N files and hbcp's own under hbase/.hbcp/
    all=$(PORT=$dbport bash scripts/mariadb.sh sql "SELECT COUNT(*) FROM azurite_$$.Blobs WHERE containerName = '$container'")
    echo "azcopy list ($all objects)" >&2
    measure azlist "$AZCOPY" list "$url?$sas" --location Blob --machine-readable
    got=$(grep -c '^hbase/' "$DIR/azlist.out" || true)
    [ "$got" = "$all" ] || { echo "azcopy listed $got blobs, expected $all" >&2; exit 1; }
    rows+=("| Azurite, \`azcopy list\` (AzCopy 10.32.2) | $all | $SECS s | $(per_min "$all" "$SECS") | $RSS_MIB MiB | | | |")
    echo "${rows[-1]}" >&2
    echo "rclone size ($all objects)" >&2
    measure rclist env RCLONE_CONFIG_AZ_TYPE=azureblob RCLONE_CONFIG_AZ_SAS_URL="$url?$sas" \
      rclone size az: --json --checkers 32
    got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["count"])' "$DIR/rclist.out")
    [ "$got" = "$all" ] || { echo "rclone listed $got objects, expected $all" >&2; exit 1; }
    rows+=("| Azurite, \`rclone size\` (rclone $(rclone version | sed -n '1s/^rclone v//p')) | $all | $SECS s | $(per_min "$all" "$SECS") | $RSS_MIB MiB | | | |")
    echo "${rows[-1]}" >&2
  fi
  rm -rf "$DIR/state" "$DIR/plan.zst"
fi

echo
echo "| source | files | plan | plan rate (files/min) | plan peak RSS | copy + verify | copy rate (files/min) | copy peak RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
