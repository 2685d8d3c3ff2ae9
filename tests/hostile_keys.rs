//! Names other tools write, or that a file system allows, and what hbcp makes of them on Azure
//! (issue 17, item 9): a directory-marker blob `data/default/` is a folder; a local name
//! holding `\` (which Azure turns into `/`) is refused, named, never renamed silently.

use std::fs;
use std::path::Path;

use crate::cloud::{azurite, container};
use crate::util::*;

fn opts() -> hbcp_store_cloud::CloudOptions {
    hbcp_store_cloud::CloudOptions {
        allow_http: true,
        create_container: true,
        ..Default::default()
    }
}

#[test]
fn copy_from_azurite_takes_a_directory_marker_blob_for_the_folder_it_marks() {
    let Some(base) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("data/default/t")).unwrap();
    fs::write(src.join("data/default/t/f"), b"cells").unwrap();
    fs::create_dir_all(src.join("data/empty")).unwrap();
    let blob = container(&base, "devstoreaccount1", "marker");
    assert_eq!(copy(&src, Path::new(&blob), &[]).code, 0);
    // What the Azure portal and Storage Explorer write for a folder: a 0-byte blob whose name
    // ends in `/`, beside the folder's files and for a folder of its own.
    for name in ["data/default/", "data/marked/"] {
        hbcp_testkit::azurite::put_blob_as_named(&blob, name, b"").unwrap();
    }
    let back = t.path().join("back");
    let r = copy(Path::new(&blob), &back, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("unsafe key"), "{r:?}");
    assert_eq!(fs::read(back.join("data/default/t/f")).unwrap(), b"cells");
    assert!(
        back.join("data/marked").is_dir(),
        "the marked folder is made"
    );
    assert!(back.join("data/empty").is_dir());
    let v = hbcp(["verify", &blob, &s(&back), "--progress", "none"]);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn copy_to_azurite_refuses_a_local_name_holding_a_backslash_and_names_it() {
    let Some(base) = azurite() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("x")).unwrap();
    fs::write(src.join("x\\y"), b"the backslash file").unwrap();
    fs::write(src.join("x/y"), b"the real x/y").unwrap();
    let blob = container(&base, "devstoreaccount1", "bslash");
    let r = copy(&src, Path::new(&blob), &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("x\\y") && r.stderr.contains("Azure Blob Storage turns into '/'"),
        "{r:?}"
    );
    // Never written over the other file of that name.
    let st = hbcp_store_cloud::open(&hbcp_store::StoreUrl::parse(&blob, true).unwrap(), &opts())
        .unwrap()
        .0;
    let mut buf = Vec::new();
    let size = st.head("x/y").unwrap().unwrap().size;
    st.read_range("x/y", 0..size, None, &mut buf).unwrap();
    assert_eq!(buf, b"the real x/y");
    assert!(!r.stderr.contains("complete and verified"), "{r:?}");
}
