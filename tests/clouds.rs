//! The three clouds' emulators as one table, for tests that do the same thing on each: Azurite,
//! moto's S3 and fake-gcs-server, a fresh folder on one of them ([`Place`]), reached straight
//! or through the fault proxy, and hbcp run against it.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::cloud::{azurite, gcs};
use crate::util::*;

/// The `GOOGLE_SERVICE_ACCOUNT_KEY` that sends object_store and hbcp's GCS requests to `base`
/// (fake-gcs-server or a proxy in front of it), without OAuth.
pub(crate) fn gcs_key(base: &str) -> String {
    format!(
        r#"{{"gcs_base_url":"{base}","disable_oauth":true,"client_email":"","private_key_id":"","private_key":""}}"#
    )
}

static N: AtomicU64 = AtomicU64::new(0);

/// A cloud's emulator, reached straight or through a proxy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Azure,
    S3,
    Gcs,
}

pub(crate) struct Cloud {
    pub(crate) kind: Kind,
    /// The emulator's base URL.
    pub(crate) upstream: String,
}

/// A fresh folder on one cloud.
pub(crate) struct Place<'a> {
    cloud: &'a Cloud,
    folder: String,
}

impl Cloud {
    /// Every cloud whose emulator runs (CI runs all three).
    pub(crate) fn all() -> Vec<Cloud> {
        let mut v = Vec::new();
        if let Some(u) = azurite() {
            v.push(Cloud {
                kind: Kind::Azure,
                upstream: u,
            });
        }
        if let Some(u) = emulator("HBCP_TEST_S3", "moto") {
            v.push(Cloud {
                kind: Kind::S3,
                upstream: u,
            });
        }
        if let Some(u) = gcs() {
            v.push(Cloud {
                kind: Kind::Gcs,
                upstream: u,
            });
        }
        v
    }

    pub(crate) fn place(&self, tag: &str) -> Place<'_> {
        Place {
            cloud: self,
            folder: format!("{tag}{}n{}", std::process::id(), N.fetch_add(1, Relaxed)),
        }
    }
}

impl Place<'_> {
    /// The folder's URL when the cloud is reached at `base` (the emulator or a proxy).
    pub(crate) fn url(&self, base: &str) -> String {
        match self.cloud.kind {
            Kind::Azure => format!("{base}/devstoreaccount1/{}/hbase", self.folder),
            Kind::S3 => format!("s3://hbcp-test/{}/hbase", self.folder),
            Kind::Gcs => format!("gs://hbcp-test/{}/hbase", self.folder),
        }
    }

    /// The environment that sends hbcp to `base`.
    pub(crate) fn env(&self, base: &str) -> Vec<(&'static str, String)> {
        match self.cloud.kind {
            Kind::Azure => vec![],
            Kind::S3 => vec![("AWS_ENDPOINT_URL", base.to_string())],
            Kind::Gcs => vec![("GOOGLE_SERVICE_ACCOUNT_KEY", gcs_key(base))],
        }
    }

    /// `hbcp ARGS` with the place reached at `base`; `{}` in an argument is the place's URL.
    pub(crate) fn run(&self, base: &str, args: &[&str]) -> Run {
        let url = self.url(base);
        let args: Vec<String> = args.iter().map(|a| a.replace("{}", &url)).collect();
        to_run(
            Command::new(bin())
                .args(&args)
                .args(["--progress", "none"])
                .envs(self.env(base))
                .output()
                .unwrap(),
        )
    }

    /// `src` copied to the place straight (not through any proxy).
    pub(crate) fn seed(&self, src: &std::path::Path) {
        let r = self.run(&self.cloud.upstream, &["copy", &s(src), "{}"]);
        assert_eq!(r.code, 0, "{:?} seed: {r:?}", self.cloud.kind);
    }
}
