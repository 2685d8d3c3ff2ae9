//! Disk full at a local target: a clean stop (exit 3), no partial file visible, and after space
//! is freed the same command finishes. The target is a small tmpfs mounted in a private mount
//! namespace (`unshare -m`), so nothing leaks out of the test.

use std::fs;
use std::process::Command;

use crate::util::*;

/// Run the bash `body` with a tmpfs of `size` mounted on `mnt` in a private mount namespace
/// (`unshare -m`: nothing leaks out of the test); its stdout and stderr.
fn in_private_tmpfs(mnt: &std::path::Path, size: &str, body: &str) -> String {
    let script = format!(
        "set -u\nmount -t tmpfs -o size={size} tmpfs \"{mnt}\" || {{ echo MOUNT-FAILED; exit 0; }}\n{body}\ncd / && umount \"{mnt}\"\n",
        mnt = mnt.display()
    );
    let out = Command::new("unshare")
        .arg("-m")
        .arg("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("MOUNT-FAILED"),
        "this test needs root and mount namespaces: {text}"
    );
    text
}

#[test]
fn copy_to_a_full_disk_stops_cleanly_and_finishes_after_space_is_freed() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let fam = src.join("data/default/t/0123456789abcdef0123456789abcdef/f");
    fs::create_dir_all(&fam).unwrap();
    for i in 0..6u32 {
        // 6 × 700 KiB: does not fit in 2 MiB.
        let data: Vec<u8> = (0..700 * 1024u32)
            .map(|j| (j.wrapping_mul(2654435761).wrapping_add(i) >> 7) as u8)
            .collect();
        fs::write(fam.join(format!("{i:032x}")), data).unwrap();
    }
    for i in 0..50u32 {
        fs::write(src.join(format!("small-{i}")), vec![i as u8; 3000]).unwrap();
    }
    let mnt = t.path().join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let dst = mnt.join("dst");
    let text = in_private_tmpfs(
        &mnt,
        "2m",
        &format!(
            r#""{bin}" copy "{src}" "{dst}" --progress none --range-size 256KiB --workers 3
echo "FIRST=$?"
cd "{dst}" && find . -path ./.hbcp -prune -o -type f -print | while read -r f; do
  cmp -s "$f" "{src}/$f" || echo "PARTIAL $f"
done
mount -o remount,size=64m "{mnt}"
"{bin}" copy "{src}" "{dst}" --progress none --range-size 256KiB --workers 3
echo "SECOND=$?"
diff -r --exclude=.hbcp "{src}" "{dst}" > /dev/null && echo "SAME"
"#,
            mnt = mnt.display(),
            bin = bin(),
            src = src.display(),
            dst = dst.display()
        ),
    );
    assert!(
        text.contains("FIRST=3"),
        "a full disk stops the copy with exit 3: {text}"
    );
    assert!(text.contains("no space left on device"), "{text}");
    assert!(!text.contains("PARTIAL"), "no partial file visible: {text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        text.contains("SECOND=0"),
        "the same command finishes: {text}"
    );
    assert!(text.contains("SAME"), "{text}");
}

/// Issue #17 item 6: a journal that cannot be written (its folder, `--state`, is on a full
/// disk) stops the run with exit 3 and the resume line, naming the journal; with space freed
/// the same command finishes.
#[test]
fn copy_whose_journal_cannot_be_written_stops_with_3_and_resumes() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let fam = src.join("data/default/t/0123456789abcdef0123456789abcdef/f");
    fs::create_dir_all(&fam).unwrap();
    for i in 0..8u32 {
        fs::write(fam.join(format!("{i:032x}")), vec![i as u8; 100_000]).unwrap();
    }
    let mnt = t.path().join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let dst = t.path().join("dst");
    let text = in_private_tmpfs(
        &mnt,
        "1m",
        &format!(
            r#"head -c 4M /dev/zero > "{mnt}/filler" 2>/dev/null
"{bin}" copy "{src}" "{dst}" --progress none --state "{mnt}/state"
echo "FIRST=$?"
rm "{mnt}/filler"
"{bin}" copy "{src}" "{dst}" --progress none --state "{mnt}/state"
echo "SECOND=$?"
diff -r --exclude=.hbcp "{src}" "{dst}" > /dev/null && echo "SAME"
"#,
            mnt = mnt.display(),
            bin = bin(),
            src = src.display(),
            dst = dst.display()
        ),
    );
    assert!(
        text.contains("FIRST=3"),
        "a journal that cannot be written is exit 3: {text}"
    );
    assert!(text.contains("journal"), "names the journal: {text}");
    assert!(text.contains("resume with"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        text.contains("SECOND=0"),
        "the same command finishes: {text}"
    );
    assert!(text.contains("SAME"), "{text}");
}
