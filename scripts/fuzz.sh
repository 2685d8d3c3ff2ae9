#!/usr/bin/env bash
# Builds every fuzz target of fuzz/ (cargo-fuzz, libFuzzer, AddressSanitizer) and runs each for a
# short bounded time, seeded with real HBase files from tests/fixtures/hbase-real; fails when a
# target crashes (the input is left in fuzz/artifacts/TARGET/). scripts/test.sh calls it.
#
# cargo-fuzz is installed from crates.io into .tools/cargo when missing. It passes nightly-only
# flags (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them, so no
# nightly toolchain is needed. FUZZ_SECONDS (default 20) is the time per target.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="$PWD/.tools/cargo"
export PATH="$tools/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz into $tools" >&2
  cargo install cargo-fuzz --locked --version 0.13.2 --root "$tools"
fi
export RUSTC_BOOTSTRAP=1
secs="${FUZZ_SECONDS:-20}"

# Seeds: small real files per target (the working corpus is a temp dir, never committed).
work=$(mktemp -d "${TMPDIR:-/tmp}/hbcp-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
fx=tests/fixtures/hbase-real
mkdir -p "$work/root" "$work/snap" "$work/seeds"/{hfile,small_files,snapshot,wal,path_classify}
tar xzf "$fx/rootdirs/hbase-2.2.3-AdamSai.tar.gz" -C "$work/root"
tar xzf "$fx/snapshots/export-2022-04-test-and-snappy-snapshots.tar.gz" -C "$work/snap"
cp "$fx/hfiles-hbase-2.4-via-hudi-rs/hudi_1_0_hbase_2_4_9_no_entry.hfile" "$work/seeds/hfile/"
gzip -dc "$fx/apache-hbase/TestCompaction_HFileWithCorruptBlock.gz" >"$work/seeds/hfile/corrupt-block"
n=0
while IFS= read -r -d '' f; do
  n=$((n + 1))
  case "$f" in
    */hbase.version | */hbase.id | */.regioninfo | */.tableinfo.*) cp "$f" "$work/seeds/small_files/$n" ;;
    */.snapshotinfo | */data.manifest | */region-manifest.*) cp "$f" "$work/seeds/snapshot/$n" ;;
    */WALs/*) [ "$(stat -c %s "$f")" -le 65536 ] && cp "$f" "$work/seeds/wal/$n" ;;
  esac
  printf '%s' "${f#"$work"/*/hbase/}" >"$work/seeds/path_classify/$n"
done < <(find "$work/root" "$work/snap" -type f -print0)
cp "$fx/apache-hbase/reference-writable-0.94/"* "$work/seeds/small_files/"

cargo fuzz build --fuzz-dir fuzz
failed=()
for t in $(cargo fuzz list --fuzz-dir fuzz); do
  mkdir -p "$work/corpus/$t" "$work/seeds/$t"
  echo "fuzz: $t for ${secs}s" >&2
  if ! cargo fuzz run --fuzz-dir fuzz "$t" "$work/corpus/$t" "$work/seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$work/$t.log" 2>&1; then
    tail -n 40 "$work/$t.log" >&2
    failed+=("$t")
  else
    runs=$(grep -aEo 'stat::number_of_executed_units: *[0-9]+' "$work/$t.log" | grep -Eo '[0-9]+$' || echo "?")
    echo "fuzz: $t: $runs runs, no crash" >&2
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: every target ran ${secs}s without a crash" >&2
