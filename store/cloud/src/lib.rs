//! hbcp's cloud endpoints: Azure Blob Storage (and ADLS Gen2, whose blob endpoint serves the
//! same data), S3 and S3-compatible stores, and GCS, through `object_store`, behind the
//! synchronous [`Store`] trait of `hbcp-store`.
//!
//! The engine runs plain OS threads; each cloud store owns a tokio runtime and drives
//! `object_store`'s async calls on it. Keys are byte-exact: paths are built with `Path::parse`
//! (never `Path::from`, which would turn an HBase WAL name's `%2C` into `%252C`). Errors are
//! mapped to `hbcp_store::Error` classes (not found, changed, permission denied, retryable), and
//! every message is passed through the redactor with the secrets in use, so no key, SAS
//! signature or token reaches any output.
//!
//! Among hbcp's crates it imports `hbcp-store` only; it must never import the stages (planner,
//! engine, verifier, job): they open it through `hbcp_store_cloud::open`.
#![warn(missing_docs, unreachable_pub)]

mod azure_blocks;
mod azure_copy;
mod azure_crc64;
mod azure_list;
mod azure_pages;
mod classify;
mod gcs_json;
mod listed_md5;
mod policy;
mod s3_copy;
mod s3_parts;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hbcp_store::redact::redact_text;
use hbcp_store::{
    Caps, CopySource, Endpoint, Entry, EntryKind, Error, ListSink, Problem, PutIf, Result, Store,
    StoreUrl, Upload,
};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt,
    PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion,
};

/// Options for opening cloud stores.
#[derive(Debug, Clone, Default)]
pub struct CloudOptions {
    /// Allow plain-HTTP endpoints.
    pub allow_http: bool,
    /// Azure endpoint override (sovereign clouds, Azurite): `https://ACCOUNT.blob.core.chinacloudapi.cn`.
    pub azure_endpoint: Option<String>,
    /// Create the container / bucket when it is missing (targets).
    pub create_container: bool,
    /// Store Content-MD5 with every blob written (`--put-md5`; Azure), so that Azure's own tools
    /// can check the blobs.
    pub put_md5: bool,
    /// LIST requests in flight while listing (`None`: [`LIST_CONCURRENCY`]; `Some(1)`: one
    /// sequential paged listing of the whole prefix).
    pub list_concurrency: Option<usize>,
    /// Most entries asked for per LIST page (`None`: the service's own, Azure 5000, S3 1000).
    pub list_page_size: Option<usize>,
    /// What to prove before the store is handed out (one or two small requests), so that an
    /// unreachable endpoint, a missing container or a credential that cannot do the job is
    /// one clear error before any byte moves.
    pub check: Check,
}

/// The requests made when a store is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Check {
    /// None (tests, and stores opened only to be probed by [`probe`]).
    #[default]
    None,
    /// One listing of at most one entry under the root: the endpoint answers, the credential
    /// is accepted and may list, the container or bucket exists.
    List,
    /// The listing, then a write that leaves nothing visible (Azure: one uncommitted block;
    /// S3: a multipart upload started and aborted). With `create_container` (which alone
    /// also checks the container), a missing container is created with the same credential,
    /// never one that exists.
    Write,
}

/// The credential an endpoint uses: its kind and where it comes from, never its value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credential {
    /// What kind (`service SAS`, `account key (SharedKey)`, `Entra ID service principal …`).
    pub kind: String,
    /// Where it comes from (`the URL's query`, `AZURE_STORAGE_ACCOUNT_KEY`, …).
    pub source: String,
}

/// LIST requests in flight by default: the top of a root is listed with a delimiter, level by
/// level, and the prefixes found are listed concurrently.
pub const LIST_CONCURRENCY: usize = 16;

/// Levels listed with a delimiter below the listed prefix before each prefix found is listed
/// flat: for an HBase root `data/`, `data/NS/`, `data/NS/TABLE/`, then one flat listing per
/// region (and per WAL folder, per archived table…).
const DELIMITED_LEVELS: usize = 4;

/// The well-known key of the Azure storage emulator's `devstoreaccount1` (public, not a secret).
const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// What happened when a store was opened, for the caller to say.
#[derive(Debug, Clone, Default)]
pub struct Opened {
    /// The container was created.
    pub created_container: Option<String>,
    /// The credential in use (cloud endpoints).
    pub credential: Option<Credential>,
}

/// Open any endpoint: local paths through the local fast path, the rest through object_store.
pub fn open(url: &StoreUrl, opts: &CloudOptions) -> Result<(Arc<dyn Store>, Opened)> {
    match &url.endpoint {
        Endpoint::Local(p) => Ok((
            Arc::new(hbcp_store::local::LocalStore::new(p.clone())),
            Opened::default(),
        )),
        Endpoint::Azure { .. } => azure_of(url, opts)
            .expect("an Azure URL")
            .map(|(st, opened)| (Arc::new(st) as Arc<dyn Store>, opened)),
        Endpoint::S3 { bucket, prefix } => open_s3(url, bucket, prefix, opts),
        Endpoint::Gcs { bucket, prefix } => open_gcs(url, bucket, prefix, opts),
        Endpoint::Memory { name } => {
            let s = object_store::memory::InMemory::new();
            let st = CloudStore::new(
                s,
                "memory",
                format!("memory://{name}"),
                String::new(),
                Vec::new(),
                mem_caps(),
            )?;
            Ok((Arc::new(st), Opened::default()))
        }
    }
}

fn mem_caps() -> Caps {
    Caps {
        is_local: false,
        positional_writes: false,
        max_part_size: u64::MAX,
        max_parts: u32::MAX,
        min_part_size: 1,
        default_concurrency: 16,
    }
}

fn client_options(allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(allow_http)
        // A part of up to 100 MiB on a slow link needs minutes, not the default 30 s.
        .with_timeout(Duration::from_secs(300))
        .with_connect_timeout(Duration::from_secs(10))
}

/// object_store retries nothing on its own: every request is tried under the one retry policy
/// (`hbcp_store::retry`, through [`policy::retried`]).
fn retry_config() -> RetryConfig {
    RetryConfig {
        max_retries: hbcp_store::retry::CLIENT_RETRIES,
        ..RetryConfig::default()
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn is_loopback_host(h: &str) -> bool {
    let host = h.split(':').next().unwrap_or("");
    host == "localhost" || host.starts_with("127.") || h.starts_with("[::1]")
}

/// The Azure credential an endpoint uses, decided once: the URL's SAS first, then the
/// environment in object_store's own order (bearer token, account key, workload identity,
/// service principal, SAS, Azure CLI, managed identity), the emulator's well-known key for
/// `devstoreaccount1` on a local endpoint when nothing else is set.
struct AzureChoice {
    /// What `hbcp auth` prints: kind and source, never the value.
    credential: Credential,
    /// The provider to use instead of object_store's choice (the URL's SAS, the emulator key).
    provider: Option<object_store::azure::AzureCredentialProvider>,
    /// Use the Azure CLI (`az login` done, nothing else configured).
    azure_cli: bool,
}

/// The line to print once when `url` carries a SAS and the environment holds an Azure
/// credential too: the URL's SAS is used for this endpoint, the environment's is not. Names the
/// variables, never their values.
pub fn url_sas_overrides(url: &StoreUrl) -> Option<String> {
    let Endpoint::Azure {
        sas: Some(_),
        account,
        ..
    } = &url.endpoint
    else {
        return None;
    };
    let mut vars: Vec<String> = Vec::new();
    let own = format!("HBCP_AZURE_KEY_{}", account.to_ascii_uppercase());
    if !account.is_empty() && env(&own).is_some() {
        vars.push(own);
    }
    vars.extend(
        AZURE_CREDENTIAL_VARS
            .iter()
            .filter(|v| env(v).is_some())
            .map(|v| v.to_string()),
    );
    match vars.as_slice() {
        [] => None,
        [one] => Some(format!(
            "{}: using the SAS in the URL; {one} in the environment is not used for this endpoint",
            url.display
        )),
        many => Some(format!(
            "{}: using the SAS in the URL; {} in the environment are not used for this endpoint",
            url.display,
            many.join(", ")
        )),
    }
}

/// Environment variables that hold an Azure credential, for the "URL SAS wins" note.
const AZURE_CREDENTIAL_VARS: &[&str] = &[
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
];

/// Which of `names` is set (the first), for naming a credential's source.
fn first_set(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find(|n| env(n).is_some())
        .map(|n| n.to_string())
}

fn choose_azure_credential(
    b: &object_store::azure::MicrosoftAzureBuilder,
    account: &str,
    sas: Option<&hbcp_store::Sas>,
    emulator_default: bool,
) -> AzureChoice {
    use object_store::azure::{AzureConfigKey as K, AzureCredential};
    let cred = |kind: &str, source: String| Credential {
        kind: kind.to_string(),
        source,
    };
    let set = |k: K| b.get_config_value(&k).filter(|v| !v.is_empty());
    let account_key_var = format!("HBCP_AZURE_KEY_{}", account.to_ascii_uppercase());
    if let Some(sas) = sas {
        let kind = if sas.is_account_sas() {
            "account SAS"
        } else {
            "service SAS"
        };
        let perms = sas.get("sp").unwrap_or_default();
        let expiry = sas.get("se").unwrap_or_default();
        return AzureChoice {
            credential: cred(
                kind,
                format!("the URL's query (permissions sp={perms}, expires se={expiry})"),
            ),
            provider: Some(Arc::new(object_store::StaticCredentialProvider::new(
                AzureCredential::SASToken(sas.pairs()),
            ))),
            azure_cli: false,
        };
    }
    let none = |credential| AzureChoice {
        credential,
        provider: None,
        azure_cli: false,
    };
    if let Some(t) = set(K::CredentialType).filter(|t| t != "auto") {
        return none(cred(
            &format!("Azure credential type {t}"),
            "AZURE_CREDENTIAL_TYPE".into(),
        ));
    }
    if set(K::Token).is_some() {
        return none(cred("Entra ID bearer token", "AZURE_STORAGE_TOKEN".into()));
    }
    if set(K::AccessKey).is_some() {
        let var = if env(&account_key_var).is_some() {
            account_key_var
        } else {
            first_set(&[
                "AZURE_STORAGE_ACCOUNT_KEY",
                "AZURE_STORAGE_KEY",
                "AZURE_STORAGE_ACCESS_KEY",
                "AZURE_STORAGE_MASTER_KEY",
            ])
            .unwrap_or_else(|| "the environment".into())
        };
        return none(cred("account key (SharedKey)", var));
    }
    let client = set(K::ClientId).is_some();
    let tenant = set(K::AuthorityId).is_some();
    if client && tenant && set(K::FederatedTokenFile).is_some() {
        return none(cred(
            "Entra ID workload identity (federated token)",
            "AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE".into(),
        ));
    }
    if client && tenant && set(K::ClientSecret).is_some() {
        return none(cred(
            "Entra ID service principal (client secret)",
            "AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET".into(),
        ));
    }
    if set(K::SasKey).is_some() {
        let var = first_set(&["AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_SAS_KEY"])
            .unwrap_or_else(|| "the environment".into());
        return none(cred("SAS", var));
    }
    // Asked for in so many words (object_store's own value defaults to false, so it cannot
    // tell "not set" from "false").
    let cli_asked = env("AZURE_USE_AZURE_CLI").map(|v| v.eq_ignore_ascii_case("true"));
    // After `az login` (its profile is there) and with no managed identity named, the Azure
    // CLI is what the operator means; AZURE_USE_AZURE_CLI=false keeps the managed identity.
    let logged_in = std::env::var_os("AZURE_CONFIG_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".azure")))
        .is_some_and(|d| d.join("azureProfile.json").is_file());
    let msi_named = client || set(K::ObjectId).is_some() || set(K::MsiResourceId).is_some();
    // The emulator's key only when no Entra ID credential is named either.
    if emulator_default && !msi_named && set(K::MsiEndpoint).is_none() && cli_asked != Some(true) {
        return AzureChoice {
            credential: cred(
                "account key (SharedKey)",
                "the storage emulator's published key for devstoreaccount1".into(),
            ),
            provider: Some(Arc::new(object_store::StaticCredentialProvider::new(
                AzureCredential::AccessKey(
                    object_store::azure::AzureAccessKey::try_new(EMULATOR_KEY)
                        .expect("the emulator key is base64"),
                ),
            ))),
            azure_cli: false,
        };
    }
    if cli_asked == Some(true) || (cli_asked.is_none() && logged_in && !msi_named) {
        let mut c = none(cred(
            "Azure CLI (az login)",
            if cli_asked == Some(true) {
                "AZURE_USE_AZURE_CLI=true".into()
            } else {
                "the Azure CLI's login (~/.azure)".into()
            },
        ));
        c.azure_cli = true;
        return c;
    }
    let endpoint = set(K::MsiEndpoint)
        .map(|e| format!("the endpoint {e}"))
        .unwrap_or_else(|| "the instance metadata service 169.254.169.254".into());
    let (kind, which) = if let Some(id) = set(K::ClientId) {
        (
            "Entra ID managed identity, user-assigned",
            format!("client id {id} (AZURE_CLIENT_ID)"),
        )
    } else if let Some(id) = set(K::ObjectId) {
        (
            "Entra ID managed identity, user-assigned",
            format!("object id {id} (AZURE_OBJECT_ID)"),
        )
    } else if let Some(id) = set(K::MsiResourceId) {
        (
            "Entra ID managed identity, user-assigned",
            format!("resource id {id} (AZURE_MSI_RESOURCE_ID)"),
        )
    } else {
        (
            "Entra ID managed identity, system-assigned (nothing else is configured)",
            "no identity named".to_string(),
        )
    };
    none(cred(kind, format!("{which}, from {endpoint}")))
}

#[allow(clippy::too_many_arguments)]
fn open_azure(
    url: &StoreUrl,
    account: &str,
    container: &str,
    prefix: &str,
    insecure: bool,
    host: Option<&str>,
    sas: Option<&hbcp_store::Sas>,
    opts: &CloudOptions,
) -> Result<(CloudStore<object_store::azure::MicrosoftAzure>, Opened)> {
    use object_store::azure::{AzureConfigKey as K, MicrosoftAzureBuilder};
    let bad = |why: String| Error::BadUrl {
        url: url.display.clone(),
        why,
    };
    let emulator =
        env("AZURE_STORAGE_USE_EMULATOR").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let loopback = host.is_some_and(is_loopback_host);
    // hbcp names the endpoint itself, the emulator's too: object_store's emulator mode would
    // take the environment's credentials over the URL's.
    let mut b = MicrosoftAzureBuilder::from_env()
        .with_container_name(container)
        .with_retry(retry_config())
        .with_use_emulator(false);
    let account = if account.is_empty() {
        env("AZURE_STORAGE_ACCOUNT_NAME")
            .or_else(|| env("AZURE_STORAGE_ACCOUNT"))
            .or_else(|| emulator.then(|| "devstoreaccount1".to_string()))
            .ok_or_else(|| bad("az:// names no account: set AZURE_STORAGE_ACCOUNT_NAME, or use wasbs://CONTAINER@ACCOUNT.blob.core.windows.net/".into()))?
    } else {
        account.to_string()
    };
    b = b.with_account(&account);
    // A key for this account in particular (a copy between two accounts needs two keys),
    // then the usual variables (object_store reads those itself).
    if let Some(k) = env(&format!("HBCP_AZURE_KEY_{}", account.to_ascii_uppercase()))
        .or_else(|| env("AZURE_STORAGE_KEY"))
    {
        b = b.with_access_key(k);
    }
    let endpoint = if let Some(e) = &opts.azure_endpoint {
        Some(e.trim_end_matches('/').to_string())
    } else if loopback {
        let h = host.unwrap_or_default();
        Some(format!(
            "{}://{h}/{account}",
            if insecure { "http" } else { "https" }
        ))
    } else if emulator {
        let base =
            env("AZURITE_BLOB_STORAGE_URL").unwrap_or_else(|| "http://127.0.0.1:10000".into());
        Some(format!("{}/{account}", base.trim_end_matches('/')))
    } else {
        match host {
            Some(h)
                if !h.starts_with("blob.core.windows.net")
                    && !h.starts_with("dfs.core.windows.net") =>
            {
                // Sovereign clouds: ACCOUNT.blob.core.chinacloudapi.cn and the like.
                let h = h.replacen("dfs.", "blob.", 1);
                Some(format!("https://{account}.{h}"))
            }
            _ => None,
        }
    };
    let mut allow_http = opts.allow_http || insecure && loopback;
    if let Some(ep) = &endpoint {
        if ep.starts_with("http://") {
            let ep_host = ep
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or("");
            if !opts.allow_http && !is_loopback_host(ep_host) {
                return Err(bad(format!("{ep} is plain HTTP; pass --allow-http")));
            }
            allow_http = true;
        }
        b = b.with_endpoint(ep.clone());
    }
    // Every secret object_store may sign with, to be redacted from any message.
    let mut secrets: Vec<String> = [K::AccessKey, K::SasKey, K::Token, K::ClientSecret]
        .into_iter()
        .filter_map(|k| b.get_config_value(&k))
        .filter(|v| !v.is_empty())
        .collect();
    if let Some(s) = sas {
        secrets.extend(s.secrets());
        if let Some(se) = s.get("se") {
            check_sas_expiry(url, &se)?;
        }
    }
    let emulator_default = endpoint.is_some() && account == "devstoreaccount1";
    let choice = choose_azure_credential(&b, &account, sas, emulator_default);
    if let Some(p) = &choice.provider {
        b = b.with_credentials(p.clone());
    }
    if choice.azure_cli {
        b = b.with_use_azure_cli(true);
    }
    b = b.with_client_options(client_options(allow_http));
    let store = b
        .build()
        .map_err(|e| bad(redact_text(&e.to_string(), &refs(&secrets))))?;
    let display = url.display.clone();
    let mut opened = Opened {
        credential: Some(choice.credential),
        ..Opened::default()
    };
    let caps = Caps {
        is_local: false,
        positional_writes: false,
        max_part_size: 4000 << 20,
        max_parts: 50_000,
        min_part_size: 1,
        default_concurrency: 32,
    };
    let container_url = format!(
        "{}/{container}",
        endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"))
    );
    let blocks = Arc::new(azure_blocks::Blocks::new(
        container_url,
        account.clone(),
        container.to_string(),
        store.credentials().clone(),
        secrets.clone(),
        opts.put_md5,
        display.clone(),
        allow_http,
    )?);
    let store = Arc::new(store);
    let mut st = CloudStore::new_shared(
        store.clone(),
        "azure",
        display,
        prefix.to_string(),
        secrets,
        caps,
    )?
    .paged(store, opts);
    st.tally = blocks.tally.clone();
    st.azure = Some(blocks.clone());
    st.bucket = container.to_string();
    if opts.check != Check::None || opts.create_container {
        let top = (!prefix.is_empty()).then(|| format!("{prefix}/"));
        let create = opts.create_container && opts.check != Check::List;
        if st.block(blocks.check_container(top.as_deref(), create))? {
            opened.created_container = Some(container.to_string());
        }
        if opts.check == Check::Write {
            st.block(blocks.probe_write(prefix))?;
        }
    }
    Ok((st, opened))
}

/// The Azure store an Azure URL names, as its own type; `None` for another kind of URL.
fn azure_of(
    url: &StoreUrl,
    opts: &CloudOptions,
) -> Option<Result<(CloudStore<object_store::azure::MicrosoftAzure>, Opened)>> {
    let Endpoint::Azure {
        account,
        container,
        prefix,
        insecure,
        host,
        sas,
        ..
    } = &url.endpoint
    else {
        return None;
    };
    Some(open_azure(
        url,
        account,
        container,
        prefix,
        *insecure,
        host.as_deref(),
        sas.as_ref(),
        opts,
    ))
}

/// A SAS whose expiry (`se`) has passed by this machine's clock is refused before any request,
/// with when it expired.
fn check_sas_expiry(url: &StoreUrl, se: &str) -> Result<()> {
    let Some(at) = classify::sas_time(se) else {
        return Ok(());
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if at <= now {
        return Err(classify::access(
            format!("open {}", url.display),
            Problem::Expired,
            format!("the URL's SAS expired at {se} (se=)"),
            classify::Cloud::Azure,
        ));
    }
    Ok(())
}

/// A printable URL without its query (a redacted SAS), to which a key can be appended.
pub(crate) fn url_base(display: &str) -> &str {
    display
        .split('?')
        .next()
        .unwrap_or(display)
        .trim_end_matches('/')
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.as_str()).collect()
}

fn open_s3(
    url: &StoreUrl,
    bucket: &str,
    prefix: &str,
    opts: &CloudOptions,
) -> Result<(Arc<dyn Store>, Opened)> {
    use object_store::aws::AmazonS3Builder;
    let mut secrets = Vec::new();
    for k in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Some(v) = env(k) {
            secrets.push(v);
        }
    }
    // Every delete hbcp makes is of one object (a lock, a staged part, a file `sync --delete`
    // removes): one DELETE, the core API every S3-compatible server has. object_store would
    // send each through the bulk DeleteObjects call (`POST ?delete`), which some servers lack
    // (s3s-fs answers 500): the target's lock was then retried for 11 s and left behind.
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry_config())
        .with_disable_bulk_delete(true);
    let mut allow_http = opts.allow_http;
    let endpoint = env("AWS_ENDPOINT_URL").or_else(|| env("AWS_ENDPOINT"));
    let loopback = endpoint
        .as_deref()
        .and_then(|e| e.split_once("://"))
        .is_some_and(|(_, h)| is_loopback_host(h.split('/').next().unwrap_or("")));
    if loopback && env("AWS_ACCESS_KEY_ID").is_none() {
        // An emulator on this machine: never fall back to the cloud's instance metadata service.
        return Err(Error::BadUrl {
            url: url.display.clone(),
            why: "AWS_ENDPOINT_URL is a local emulator but AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set".into(),
        });
    }
    if let Some(ep) = endpoint {
        if let Some(h) = ep.strip_prefix("http://") {
            if !opts.allow_http && !is_loopback_host(h.split('/').next().unwrap_or("")) {
                return Err(Error::BadUrl {
                    url: url.display.clone(),
                    why: format!("AWS_ENDPOINT_URL {ep} is plain HTTP; pass --allow-http"),
                });
            }
            allow_http = true;
        }
        b = b.with_endpoint(ep).with_virtual_hosted_style_request(false);
    }
    b = b.with_client_options(client_options(allow_http));
    use object_store::aws::AmazonS3ConfigKey as K;
    let endpoint = b.get_config_value(&K::Endpoint);
    let region = b
        .get_config_value(&K::Region)
        .unwrap_or_else(|| "us-east-1".into());
    let store = b.build().map_err(|e| Error::BadUrl {
        url: url.display.clone(),
        why: redact_text(&e.to_string(), &refs(&secrets)),
    })?;
    let parts = s3_parts::S3Parts::new(
        endpoint.as_deref(),
        bucket,
        &region,
        store.credentials().clone(),
        secrets.clone(),
        url.display.clone(),
        allow_http,
    )?;
    let caps = Caps {
        is_local: false,
        positional_writes: false,
        max_part_size: 5 << 30,
        max_parts: 10_000,
        min_part_size: 5 << 20,
        default_concurrency: 32,
    };
    let store = Arc::new(store);
    let mut st = CloudStore::new_shared(
        store.clone(),
        "s3",
        url.display.clone(),
        prefix.to_string(),
        secrets,
        caps,
    )?
    .paged(store, opts);
    st.tally = parts.tally.clone();
    st.s3 = Some(Arc::new(parts));
    st.bucket = bucket.to_string();
    let opened = Opened {
        credential: Some(Credential {
            kind: if env("AWS_ACCESS_KEY_ID").is_some() {
                "access key".into()
            } else if env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
                "web identity (IRSA)".into()
            } else {
                "instance or container role (nothing else is configured)".into()
            },
            source: first_set(&[
                "AWS_ACCESS_KEY_ID",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            ])
            .unwrap_or_else(|| "the instance metadata service".into()),
        }),
        ..Opened::default()
    };
    st.check(opts.check)?;
    Ok((Arc::new(st), opened))
}

fn open_gcs(
    url: &StoreUrl,
    bucket: &str,
    prefix: &str,
    opts: &CloudOptions,
) -> Result<(Arc<dyn Store>, Opened)> {
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey as K};
    let bad = |why: String| Error::BadUrl {
        url: url.display.clone(),
        why,
    };
    let b = GoogleCloudStorageBuilder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry_config());
    // The key JSON (GOOGLE_SERVICE_ACCOUNT_KEY, or the file GOOGLE_SERVICE_ACCOUNT names) is
    // read here too: for its secrets, to be redacted, and for its `gcs_base_url` (an emulator).
    let key_json = match (
        b.get_config_value(&K::ServiceAccountKey),
        b.get_config_value(&K::ServiceAccount),
    ) {
        (Some(k), _) => Some(gcs_key_json(&k, "GOOGLE_SERVICE_ACCOUNT_KEY").map_err(bad)?),
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(k) => Some(gcs_key_json(&k, &path).map_err(bad)?),
            // object_store says what is wrong with the file when it builds.
            Err(_) => None,
        },
        (None, None) => None,
    };
    let mut secrets = Vec::new();
    if let Some(t) = b.get_config_value(&K::BearerToken) {
        secrets.push(t);
    }
    if let Some(j) = &key_json {
        secrets.extend(gcs_key_secrets(j));
    }
    // Application default credentials (a user's refresh token and client secret): for their
    // secrets only; object_store reads the file itself.
    if let Some(j) = b
        .get_config_value(&K::ApplicationCredentials)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    {
        secrets.extend(gcs_key_secrets(&j));
    }
    let base = b.get_config_value(&K::BaseUrl).or_else(|| {
        key_json
            .as_ref()
            .and_then(|j| j.get("gcs_base_url")?.as_str().map(str::to_string))
    });
    let mut allow_http = opts.allow_http;
    if let Some(h) = base.as_deref().and_then(|b| b.strip_prefix("http://")) {
        // Plain HTTP only to an emulator on this machine, or when asked for.
        if !opts.allow_http && !is_loopback_host(h.split('/').next().unwrap_or("")) {
            return Err(bad(format!(
                "the GCS base URL http://{h} is plain HTTP; pass --allow-http"
            )));
        }
        allow_http = true;
    }
    let store = b
        .with_client_options(client_options(allow_http))
        .build()
        .map_err(|e| bad(redact_text(&e.to_string(), &refs(&secrets))))?;
    // Parts are objects of their own joined by compose: no minimum size; a compose tree of
    // three levels takes 32^3 parts, more than the engine ever cuts.
    let caps = Caps {
        is_local: false,
        positional_writes: false,
        max_part_size: 5 << 40,
        max_parts: 10_000,
        min_part_size: 1,
        default_concurrency: 32,
    };
    let parts_root = if prefix.is_empty() {
        gcs_json::PARTS_DIR.to_string()
    } else {
        format!("{prefix}/{}", gcs_json::PARTS_DIR)
    };
    let json = gcs_json::GcsJson::new(
        base.as_deref().unwrap_or("https://storage.googleapis.com"),
        bucket,
        store.credentials().clone(),
        secrets.clone(),
        parts_root,
        opts.put_md5,
        allow_http,
    )?;
    let store = Arc::new(store);
    let mut st = CloudStore::new_shared(
        store.clone(),
        "gcs",
        url.display.clone(),
        prefix.to_string(),
        secrets,
        caps,
    )?
    .paged(store, opts);
    st.tally = json.tally.clone();
    st.gcs = Some(Arc::new(json));
    st.bucket = bucket.to_string();
    let opened = Opened {
        credential: Some(Credential {
            kind: if key_json.is_some() {
                "service account key".into()
            } else {
                "application default credentials".into()
            },
            source: first_set(&[
                "GOOGLE_SERVICE_ACCOUNT_KEY",
                "GOOGLE_SERVICE_ACCOUNT",
                "GOOGLE_SERVICE_ACCOUNT_PATH",
                "GOOGLE_APPLICATION_CREDENTIALS",
            ])
            .unwrap_or_else(|| "the metadata server".into()),
        }),
        ..Opened::default()
    };
    st.check(opts.check)?;
    Ok((Arc::new(st), opened))
}

/// Parse a GCS credentials JSON. The error says where it is broken, never what it holds (a
/// parser's message could quote a piece of the private key).
fn gcs_key_json(text: &str, source: &str) -> std::result::Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(format!(
            "{source} is not a JSON object (a service-account key)"
        )),
        Err(e) => Err(format!(
            "{source} is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )),
    }
}

/// Fields of a GCS credentials JSON that name things and are not secret.
const GCS_PUBLIC_FIELDS: &[&str] = &[
    "type",
    "project_id",
    "private_key_id",
    "client_email",
    "client_id",
    "auth_uri",
    "token_uri",
    "auth_provider_x509_cert_url",
    "client_x509_cert_url",
    "universe_domain",
    "gcs_base_url",
    "quota_project_id",
];

/// The secret values in a GCS credentials JSON: every string but the public fields (the private
/// key, an OAuth client secret and refresh token, and whatever a wrongly written key holds),
/// the private key also in its JSON form and each line of its body, so that a piece of it is
/// caught too.
fn gcs_key_secrets(j: &serde_json::Value) -> Vec<String> {
    let mut v = Vec::new();
    let Some(fields) = j.as_object() else {
        return v;
    };
    for (field, value) in fields {
        let Some(s) = value.as_str() else { continue };
        if GCS_PUBLIC_FIELDS.contains(&field.as_str()) {
            continue;
        }
        v.push(s.to_string());
        // The key's newlines as `\n`, as a message quoting the JSON has them.
        v.push(s.replace('\n', "\\n"));
        v.extend(
            s.lines()
                .map(str::trim)
                .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
                .map(str::to_string),
        );
    }
    v
}

#[cfg(test)]
mod gcs_tests {
    use super::*;

    #[test]
    fn every_secret_of_a_key_json_is_found_and_its_names_are_not() {
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
        let j = serde_json::json!({
            "type": "service_account",
            "client_email": "copier@project.iam.gserviceaccount.com",
            "private_key": format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"),
            "refresh_token": "1//0refresh-token-value",
            "disable_oauth": true,
        });
        let secrets = gcs_key_secrets(&j);
        let text = format!(
            "failed for copier@project.iam.gserviceaccount.com: bad {body} and \"1//0refresh-token-value\""
        );
        let out = redact_text(&text, &refs(&secrets));
        assert!(
            !out.contains(body) && !out.contains("refresh-token"),
            "{out}"
        );
        assert!(
            out.contains("copier@project.iam.gserviceaccount.com"),
            "{out}"
        );
    }

    #[test]
    fn status_of_reads_every_message_shape_object_store_and_reqwest_give() {
        // A client error answered at once (the message a refused part upload carries): it
        // must carry its 400, or a part error would be retried as if it were transient.
        let refused = "Generic GCS error: Error performing PUT http://127.0.0.1:4443/hbcp-test/x?\
            partNumber=1&uploadId=abc in 1.2ms - Server returned non-2xx status code: 400 Bad \
            Request: invalid uploadType";
        assert_eq!(status_of(refused), Some(400));
        let after_retries = "Generic S3 error: Error performing PUT http://127.0.0.1:5000/b/k in \
            31s, after 8 retries, max_retries: 8, retry_timeout: 180s  - Server returned non-2xx \
            status code: 503 Service Unavailable: ";
        assert_eq!(status_of(after_retries), Some(503));
        let reqwest = "HTTP status server error (502 Bad Gateway) for url (http://127.0.0.1/x)";
        assert_eq!(status_of(reqwest), Some(502));
        assert_eq!(
            status_of("Response status: 429 Too Many Requests"),
            Some(429)
        );
        let no_status = "Generic GCS error: Error performing PUT http://127.0.0.1:4443/b/k in \
            10s - error sending request: connection reset";
        assert_eq!(status_of(no_status), None);
    }

    #[test]
    fn a_broken_key_json_is_described_by_position_only() {
        let e = gcs_key_json(
            "{\"private_key\": \"SECRETSECRET",
            "GOOGLE_SERVICE_ACCOUNT_KEY",
        )
        .unwrap_err();
        assert!(
            e.contains("GOOGLE_SERVICE_ACCOUNT_KEY is not valid JSON (line 1"),
            "{e}"
        );
        assert!(!e.contains("SECRET"), "{e}");
    }
}

/// The object-store-backed implementation of [`Store`].
struct CloudStore<S> {
    inner: Arc<S>,
    kind: &'static str,
    /// The container or bucket, for messages.
    bucket: String,
    display: String,
    prefix: String,
    secrets: Vec<String>,
    caps: Caps,
    rt: tokio::runtime::Runtime,
    /// Azure: block uploads with hbcp's own block IDs (resumable), and Content-MD5.
    azure: Option<Arc<azure_blocks::Blocks>>,
    /// S3: the listing of open multipart uploads, to resume one a killed run left.
    s3: Option<Arc<s3_parts::S3Parts>>,
    /// GCS: writes through the JSON API (uploads, part objects joined by compose, rewrites).
    gcs: Option<Arc<gcs_json::GcsJson>>,
    /// Page by page listing (Azure, S3, GCS), which lists in parallel and times each page.
    pager: Option<Arc<dyn PaginatedListStore>>,
    /// LIST requests in flight.
    list_concurrency: usize,
    /// Most entries per LIST page, if not the service's default.
    list_page_size: Option<usize>,
    /// Azure page blobs seen by a listing or a HEAD (key → the file's length): read as Hadoop
    /// reads them, their pages decoded (see `azure_pages`).
    pages: Mutex<HashMap<String, u64>>,
    /// What the retry policy saw on this store's requests (shared with `azure`, `s3`, `gcs`).
    tally: Arc<hbcp_store::retry::Tally>,
}

impl<S> fmt::Debug for CloudStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudStore")
            .field("kind", &self.kind)
            .field("url", &self.display)
            .finish_non_exhaustive()
    }
}

/// One listed object, from whichever listing produced it.
#[derive(Debug)]
struct Listed {
    /// The full object name (the store's prefix included).
    location: String,
    size: u64,
    e_tag: Option<String>,
    modified: Option<std::time::SystemTime>,
    /// Whether the listing itself said the object is a folder marker (Azure's List Blobs with
    /// metadata); `None` when it cannot tell.
    folder: Option<bool>,
    /// An Azure page blob (hadoop-azure's WAL format).
    page: bool,
}

impl From<&object_store::ObjectMeta> for Listed {
    fn from(m: &object_store::ObjectMeta) -> Self {
        Listed {
            location: m.location.as_ref().to_string(),
            size: m.size,
            e_tag: m.e_tag.clone(),
            modified: Some(
                std::time::UNIX_EPOCH
                    + Duration::from_millis(m.last_modified.timestamp_millis().max(0) as u64),
            ),
            folder: None,
            page: false,
        }
    }
}

/// One page of a listing: objects, common prefixes (each ending in `/`, byte-exact), the next
/// page's token.
struct Page {
    objects: Vec<Listed>,
    prefixes: Vec<String>,
    token: Option<String>,
}

/// Metadata key of HDInsight's WASB directory markers.
const FOLDER_META: &str = "hdi_isfolder";

/// On S3 and GCS (whose object names cannot end in `/` through object_store) an empty
/// directory is kept as a 0-byte object of this name inside it.
const DIR_MARKER: &str = ".hbcp-empty-dir";
/// HEADs in flight while a listing tells directory markers from empty files (Azure).
const LIST_HEADS: usize = 32;

impl<S: ObjectStore + MultipartStore> CloudStore<S> {
    fn new(
        inner: S,
        kind: &'static str,
        display: String,
        prefix: String,
        secrets: Vec<String>,
        caps: Caps,
    ) -> Result<Self> {
        Self::new_shared(Arc::new(inner), kind, display, prefix, secrets, caps)
    }

    fn new_shared(
        inner: Arc<S>,
        kind: &'static str,
        display: String,
        prefix: String,
        secrets: Vec<String>,
        caps: Caps,
    ) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("hbcp-io")
            .build()
            .map_err(|e| Error::io("tokio runtime", "start", e))?;
        Ok(CloudStore {
            inner,
            kind,
            bucket: String::new(),
            display,
            prefix,
            secrets,
            caps,
            rt,
            azure: None,
            s3: None,
            gcs: None,
            pager: None,
            list_concurrency: 1,
            list_page_size: None,
            pages: Mutex::new(HashMap::new()),
            tally: Arc::default(),
        })
    }

    /// List page by page through `pager`, with the requests in flight that `opts` asks for.
    fn paged(mut self, pager: Arc<dyn PaginatedListStore>, opts: &CloudOptions) -> Self {
        self.pager = Some(pager);
        self.list_concurrency = opts.list_concurrency.unwrap_or(LIST_CONCURRENCY).max(1);
        self.list_page_size = opts.list_page_size;
        self
    }

    fn path(&self, key: &str) -> Result<Path> {
        hbcp_store::check_key(key)?;
        if self.kind == "azure" && key.contains('\\') {
            // Azure Blob Storage reads `\` in a blob name as `/`: `x\y` would become `x/y`,
            // another file, silently.
            return Err(Error::BadKey {
                key: key.to_string(),
                why: "holds '\\', which Azure Blob Storage turns into '/' (another name); \
                      rename it, or leave it out with --exclude"
                    .into(),
            });
        }
        let full = if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        Path::parse(&full).map_err(|e| Error::BadKey {
            key: key.to_string(),
            why: e.to_string(),
        })
    }

    fn rel<'a>(&self, full: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            Some(full)
        } else {
            full.strip_prefix(&self.prefix)?.strip_prefix('/')
        }
    }

    /// Map an object_store error (see [`ErrCtx::map`]).
    fn err(&self, op: &str, key: &str, e: object_store::Error) -> Error {
        self.ctx().map(op, key, e)
    }

    /// What this store's errors are mapped with.
    fn ctx(&self) -> ErrCtx {
        ErrCtx {
            kind: self.kind,
            bucket: self.bucket.clone(),
            display: self.display.clone(),
            secrets: self.secrets.clone(),
        }
    }

    /// Run `send` (one request, built afresh each time, its error mapped) under the retry
    /// policy, on this store's runtime.
    fn call<T, F, Fut>(&self, send: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.block(policy::retried(&self.tally, send))
    }

    /// One object_store request of `op` on `key` under the retry policy, its error mapped.
    async fn req<T, F, Fut>(&self, op: &str, key: &str, mut send: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = object_store::Result<T>>,
    {
        policy::retried(&self.tally, || {
            let f = send();
            async move { f.await.map_err(|e| self.err(op, key, e)) }
        })
        .await
    }

    /// [`CloudStore::req`], blocking.
    fn call_os<T, F, Fut>(&self, op: &str, key: &str, send: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = object_store::Result<T>>,
    {
        self.block(self.req(op, key, send))
    }

    /// [`CloudStore::call_os`] of a request whose "not found" is an answer: `None`.
    /// The GCS generation of `key` (at `p`), which a rewrite names so that GCS copies that
    /// generation only: the one a HEAD shows, when its ETag is still `etag` (the version the
    /// listing gave); [`Error::Changed`] when the object has changed since, or is gone.
    fn gcs_generation(&self, key: &str, p: &Path, etag: &str) -> Result<String> {
        let changed = |why: &str| Error::Changed {
            key: key.to_string(),
            why: why.to_string(),
        };
        let m = self
            .call_opt("head", key, || self.inner.head(p))?
            .ok_or_else(|| changed("gone"))?;
        if unquoted(m.e_tag.as_deref()).as_deref() != Some(etag.trim_matches('"')) {
            return Err(changed("another ETag"));
        }
        m.version
            .ok_or_else(|| changed("the service gave no generation"))
    }

    fn call_opt<T, F, Fut>(&self, op: &str, key: &str, mut send: F) -> Result<Option<T>>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = object_store::Result<T>>,
    {
        self.call_os(op, key, || {
            let f = send();
            async move {
                match f.await {
                    Ok(v) => Ok(Some(v)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
    }

    /// One ranged GET of `p` whose whole body is read, under the retry policy (a body cut off
    /// is asked for again).
    async fn get_bytes(
        &self,
        op: &str,
        key: &str,
        p: &Path,
        opts: GetOptions,
    ) -> Result<bytes::Bytes> {
        self.req(op, key, || {
            let opts = opts.clone();
            async move { self.inner.get_opts(p, opts).await?.bytes().await }
        })
        .await
    }

    /// The requests `check` asks for (S3 and GCS; Azure's also create a missing container).
    fn check(&self, check: Check) -> Result<()> {
        if check != Check::None {
            self.probe_list()?;
        }
        if check == Check::Write {
            self.probe_write()?;
        }
        Ok(())
    }

    /// One listing of at most one entry under the root: proves the endpoint answers, the
    /// credential is accepted and may list, and the container or bucket exists.
    fn probe_list(&self) -> Result<()> {
        let top = (!self.prefix.is_empty()).then(|| format!("{}/", self.prefix));
        if let Some(az) = &self.azure {
            return self
                .block(az.check_container(top.as_deref(), false))
                .map(|_| ());
        }
        let Some(pager) = &self.pager else {
            return Ok(());
        };
        self.call_os("list", "", || {
            let opts = PaginatedListOptions {
                max_keys: Some(1),
                ..Default::default()
            };
            pager.list_paginated(top.as_deref(), opts)
        })
        .map(|_| ())
    }

    /// Proves the credential may write under the root, leaving nothing visible: a multipart
    /// upload started and aborted (S3). Azure's is [`azure_blocks::Blocks::probe_write`]; GCS
    /// has none (its first write says it).
    fn probe_write(&self) -> Result<()> {
        if let Some(az) = &self.azure {
            return self.block(az.probe_write(&self.prefix));
        }
        if self.s3.is_none() {
            return Ok(());
        }
        let key = format!(".hbcp/probe-{}", std::process::id());
        let p = self.path(&key)?;
        let id = self.call_os("write", &key, || self.inner.create_multipart(&p))?;
        let _ = self.call_os("write", &key, || self.inner.abort_multipart(&p, &id));
        Ok(())
    }

    /// One listed object as hbcp sees it: a directory marker (ours on S3 and GCS, HDInsight's
    /// `hdi_isfolder` blobs on Azure) as a directory, the rest as files. Objects outside the
    /// store root or the listed prefix, and GCS part objects of uploads not yet committed, are
    /// passed over (`None`).
    async fn classify(&self, prefix: &str, mut meta: Listed) -> Result<Option<Entry>> {
        let Some(rel) = self.rel(&meta.location) else {
            return Ok(None);
        };
        if rel.is_empty() || !rel.starts_with(prefix) {
            return Ok(None);
        }
        if meta.page {
            // The file is what the pages hold, not the preallocated blob.
            let len = self.page_file_len(rel, &meta.location).await?;
            meta.size = len;
            return Ok(Some(entry_of(rel.to_string(), &meta, EntryKind::File)));
        }
        if self.gcs.is_some()
            && rel
                .strip_prefix(gcs_json::PARTS_DIR)
                .is_some_and(|r| r.starts_with('/'))
        {
            return Ok(None);
        }
        if let Some(dir) = rel.strip_suffix(&format!("/{DIR_MARKER}")) {
            return Ok(Some(entry_of(dir.to_string(), &meta, EntryKind::Dir)));
        }
        // A 0-byte object whose name ends in `/` (`data/default/`, written by the Azure portal,
        // Storage Explorer and some tools) marks a folder: the folder, not a key with an empty
        // last component.
        if let Some(dir) = rel.strip_suffix('/') {
            if meta.size == 0 && !dir.is_empty() && !dir.ends_with('/') {
                return Ok(Some(entry_of(dir.to_string(), &meta, EntryKind::Dir)));
            }
        }
        // HDInsight directory markers are 0-byte blobs with hdi_isfolder=true. Azure's own
        // listing says so; a listing without metadata needs a HEAD of the blob.
        let folder = match meta.folder {
            Some(f) => f && meta.size == 0,
            None => {
                meta.size == 0
                    && self.kind == "azure"
                    && match Path::parse(&meta.location) {
                        Ok(p) => self.folder_marker(&p).await,
                        Err(_) => false,
                    }
            }
        };
        let kind = if folder {
            EntryKind::Dir
        } else {
            EntryKind::File
        };
        Ok(Some(entry_of(rel.to_string(), &meta, kind)))
    }

    /// The length of the file a page blob holds (written pages, the last one's count), noted
    /// so that reads of `key` decode its pages.
    async fn page_file_len(&self, key: &str, location: &str) -> Result<u64> {
        let az = self.azure.as_ref().ok_or_else(|| Error::Unsupported {
            what: format!("page blob {key}"),
            hint: "page blobs are read on Azure only".into(),
        })?;
        let bad = |why: String| Error::Remote {
            what: format!("read {}/{key}", self.display.trim_end_matches('/')),
            message: format!("page blob: {why}"),
            status: None,
            retryable: false,
        };
        let written = az.written_pages(location).await?;
        let len = if written == 0 {
            0
        } else {
            let p = Path::parse(location).map_err(|e| Error::BadKey {
                key: key.into(),
                why: e.to_string(),
            })?;
            let opts = GetOptions {
                range: Some(GetRange::Bounded(written - azure_pages::PAGE..written)),
                ..Default::default()
            };
            let last = self.get_bytes("read", key, &p, opts).await?;
            azure_pages::file_len(written, &last).map_err(bad)?
        };
        self.pages.lock().unwrap().insert(key.to_string(), len);
        Ok(len)
    }

    /// The file length of `key` when it is a page blob seen by a listing or a HEAD.
    fn page_len(&self, key: &str) -> Option<u64> {
        self.pages.lock().unwrap().get(key).copied()
    }

    /// `range` of the file a page blob holds: its pages read (conditional on `version`) and
    /// decoded.
    fn read_pages(
        &self,
        key: &str,
        len: u64,
        range: Range<u64>,
        version: Option<&str>,
    ) -> Result<bytes::Bytes> {
        if range.end > len {
            return Err(Error::ShortRead {
                key: key.into(),
                offset: len,
                wanted: range.end - len,
            });
        }
        if range.start == range.end {
            return Ok(bytes::Bytes::new());
        }
        let p = self.path(key)?;
        let raw = azure_pages::raw_range(&range);
        let opts = GetOptions {
            range: Some(GetRange::Bounded(raw)),
            if_match: version.map(|v| format!("\"{}\"", v.trim_matches('"'))),
            ..Default::default()
        };
        let pages = self.block(self.get_bytes("read", key, &p, opts))?;
        azure_pages::decode(&pages, &range, len)
            .map(bytes::Bytes::from)
            .map_err(|why| Error::Changed {
                key: key.into(),
                why: format!("page blob: {why}"),
            })
    }

    /// Hand a page of listed objects to the sink, in listing order. Where the listing cannot
    /// tell Azure's folder markers from empty files, the HEADs that do run [`LIST_HEADS`] at a
    /// time, or a root of a million empty files would be a million requests one after another.
    async fn emit_page(
        &self,
        prefix: &str,
        objects: Vec<Listed>,
        sink: &ListSink<'_>,
    ) -> Result<()> {
        let mut entries = futures::stream::iter(objects)
            .map(|m| self.classify(prefix, m))
            .buffered(LIST_HEADS);
        while let Some(e) = entries.next().await {
            if let Some(e) = e? {
                sink(e)?;
            }
        }
        Ok(())
    }

    /// List `top` (a full object prefix ending in `/`, or the whole bucket) page by page, with
    /// up to `list_concurrency` LIST requests in flight. The first [`DELIMITED_LEVELS`] levels
    /// are listed with a `/` delimiter; every prefix found there is queued and listed on its
    /// own, concurrently, and below those levels each prefix is listed flat. With one request
    /// in flight the whole prefix is one flat paged listing. Pages go to the sink as they come,
    /// so what is held is at most one page per request in flight, plus the queue of prefixes
    /// still to list (names only). The order of the entries is not the key order (the
    /// listing's contract is no particular order).
    async fn walk(
        &self,
        pager: &Arc<dyn PaginatedListStore>,
        top: Option<String>,
        prefix: &str,
        sink: &ListSink<'_>,
        page: &(dyn Fn(Duration) + Sync),
    ) -> Result<()> {
        #[derive(Clone)]
        struct Req {
            prefix: Option<String>,
            level: usize,
            token: Option<String>,
        }
        let conc = self.list_concurrency.max(1);
        let levels = if conc > 1 { DELIMITED_LEVELS } else { 0 };
        let lister = match &self.azure {
            Some(az) => Lister::Azure(az.clone()),
            None => Lister::Paged(pager.clone()),
        };
        let mut queue = VecDeque::from([Req {
            prefix: top,
            level: 0,
            token: None,
        }]);
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < conc {
                let Some(req) = queue.pop_front() else { break };
                // Spawned, so that requests in flight go on while a page goes to the sink.
                let fetch = fetch_page(
                    lister.clone(),
                    (self.ctx(), self.tally.clone(), prefix.to_string()),
                    req.prefix.clone(),
                    req.level < levels,
                    req.token.clone(),
                    self.list_page_size,
                );
                running.push(self.rt.spawn(async move {
                    let t0 = Instant::now();
                    let r = fetch.await;
                    (req, t0.elapsed(), r)
                }));
            }
            let Some(done) = running.next().await else {
                return Ok(());
            };
            let (req, took, r) = done.map_err(|e| Error::Remote {
                what: format!("list {}/{prefix}", self.display.trim_end_matches('/')),
                message: format!("listing task failed: {e}"),
                status: None,
                retryable: false,
            })?;
            page(took);
            let res = r.map_err(|e| match e {
                Error::NotFound { .. } => Error::NotFound { key: prefix.into() },
                e => e,
            })?;
            if let Some(token) = res.token {
                // The rest of this folder first: a started listing is finished before new
                // ones start, so few page tokens are held at once.
                queue.push_front(Req {
                    token: Some(token),
                    ..req.clone()
                });
            }
            for sub in res.prefixes {
                // Each folder is listed once: a common prefix is always longer than the prefix
                // listed. One that is not (a name holding `//` whose prefix a client library
                // normalised) would list the same folder again, and its entries twice.
                let parent = req.prefix.as_deref().unwrap_or("");
                if sub.len() <= parent.len() || !sub.starts_with(parent) {
                    return Err(Error::Remote {
                        what: format!("list {}/{prefix}", self.display.trim_end_matches('/')),
                        message: format!(
                            "the listing of {parent:?} named the folder {sub:?} inside it: a name \
                             holding '//' that this store cannot list folder by folder; list it \
                             with HBCP_LIST_CONCURRENCY=1"
                        ),
                        status: None,
                        retryable: false,
                    });
                }
                queue.push_back(Req {
                    prefix: Some(sub),
                    level: req.level + 1,
                    token: None,
                });
            }
            self.emit_page(prefix, res.objects, sink).await?;
        }
    }

    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Whether the blob at `path` is an HDInsight folder marker (one HEAD; a blob that cannot
    /// be asked is taken for a file).
    async fn folder_marker(&self, path: &Path) -> bool {
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        self.req("head", path.as_ref(), || {
            self.inner.get_opts(path, opts.clone())
        })
        .await
        .is_ok_and(|r| marks_folder(&r.attributes))
    }
}

/// True when a blob's metadata says it is an HDInsight folder marker (`hdi_isfolder=true`).
fn marks_folder(attributes: &object_store::Attributes) -> bool {
    attributes
        .get(&Attribute::Metadata(FOLDER_META.into()))
        .is_some_and(|v| v.as_ref() == "true")
}

/// What an object_store error is mapped with: the store's kind, its container or bucket and URL
/// (for messages), and the secrets to redact.
#[derive(Clone)]
struct ErrCtx {
    kind: &'static str,
    bucket: String,
    display: String,
    secrets: Vec<String>,
}

impl ErrCtx {
    /// Map an object_store error of `op` on `key`; the message is redacted. A problem of the
    /// endpoint itself (unreachable, credential, permission, missing container) becomes
    /// [`Error::Access`]. Whether it may pass is decided by its HTTP status, or without one by
    /// the HTTP client's kind of transport failure, never by the words of the message.
    fn map(&self, op: &str, key: &str, e: object_store::Error) -> Error {
        let msg = redact_text(&classify::chain(&e), &refs(&self.secrets));
        let what = if key.is_empty() {
            format!("{op} {}", url_base(&self.display))
        } else {
            format!("{op} {}/{key}", url_base(&self.display))
        };
        let denied = matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        );
        if let Some(err) = endpoint_error(self.kind, op, &self.bucket, &what, &msg, denied) {
            return err;
        }
        match e {
            object_store::Error::NotFound { .. } => Error::NotFound { key: key.into() },
            object_store::Error::Precondition { .. } | object_store::Error::NotModified { .. } => {
                Error::Changed {
                    key: key.into(),
                    why: "the ETag changed".into(),
                }
            }
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => Error::PermissionDenied {
                what,
                detail: Some(msg),
            },
            e => {
                let status = status_of(&msg);
                let retryable = match status {
                    Some(s) => hbcp_store::retry::status_may_pass(s),
                    None => policy::transport_may_pass(&e),
                };
                if status == Some(403) || status == Some(401) {
                    return Error::PermissionDenied {
                        what,
                        detail: Some(msg),
                    };
                }
                Error::Remote {
                    what,
                    message: msg,
                    status,
                    retryable,
                }
            }
        }
    }
}

/// A problem of the endpoint itself in an object_store error's (redacted) text `msg`: the
/// credential could not be had, the endpoint is unreachable, or the service refused the
/// credential, a permission or the container. `denied`: object_store said 401/403.
fn endpoint_error(
    kind: &str,
    op: &str,
    bucket: &str,
    what: &str,
    msg: &str,
    denied: bool,
) -> Option<Error> {
    use classify::Cloud;
    let cloud = match kind {
        "azure" => Cloud::Azure,
        "s3" => Cloud::S3,
        "gcs" => Cloud::Gcs,
        _ => return None,
    };
    let status = status_of(msg);
    let code = classify::xml_field(msg, "Code");
    let op = classify::Op::of(op);
    let problem = classify::credential_failure(msg)
        .or_else(|| match (cloud, status) {
            (Cloud::Azure, Some(s)) => {
                let d = match classify::xml_field(msg, "AuthenticationErrorDetail") {
                    "" => classify::xml_field(msg, "Message"),
                    d => d,
                };
                classify::azure(s, code, d, op, bucket)
            }
            (Cloud::S3, Some(s)) => classify::s3(s, code, op, bucket),
            (Cloud::Gcs, Some(s)) => classify::gcs(s, msg, op, bucket),
            _ => None,
        })
        .or_else(|| status.is_none().then(|| classify::transport(msg)).flatten())
        .or_else(|| {
            denied.then(|| match status {
                Some(401) => Problem::Unauthenticated,
                _ => Problem::Forbidden {
                    permission: op.permission(cloud),
                },
            })
        })?;
    // The service's own words, short: its code and status; a credential chain's failure is
    // named by the problem and its fix, not by its text (which repeats every link of it).
    let detail = match (&problem, status) {
        (Problem::NoCredential | Problem::Unauthenticated, None) => {
            classify::credential_detail(msg)
        }
        (Problem::NoCredential, _) => classify::credential_detail(msg),
        (_, Some(s)) if !code.is_empty() => format!("HTTP {s} {code}"),
        (_, Some(s)) => format!("HTTP {s}"),
        _ => String::new(),
    };
    Some(classify::access(what.to_string(), problem, detail, cloud))
}

fn status_of(msg: &str) -> Option<u16> {
    // object_store's messages carry "… status code: 400 Bad Request: …" (a non-2xx answer),
    // "… status: 503 Service Unavailable …" or "HTTP status server error (503 …)".
    // object_store's Azure bulk delete says "… (code: 403)".
    for pat in [
        "status code: ",
        "status: ",
        "error (",
        "Status: ",
        "(code: ",
    ] {
        if let Some(i) = msg.find(pat) {
            let rest = &msg[i + pat.len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if digits.len() == 3 {
                return digits.parse().ok();
            }
        }
    }
    None
}

/// A version token as entries carry it: listings, HEAD answers and writes' answers quote ETags
/// differently, so they are compared unquoted.
pub(crate) fn unquoted(e_tag: Option<&str>) -> Option<String> {
    e_tag
        .map(|t| t.trim_matches('"').to_string())
        .filter(|t| !t.is_empty())
}

fn entry_of(key: String, meta: &Listed, kind: EntryKind) -> Entry {
    Entry {
        key,
        size: if kind == EntryKind::File {
            meta.size
        } else {
            0
        },
        version: unquoted(meta.e_tag.as_deref()),
        modified: meta.modified,
        kind,
    }
}

/// Where a listing's pages come from: Azure's own List Blobs with metadata, or object_store's
/// paged listing (S3, GCS).
#[derive(Clone)]
enum Lister {
    Azure(Arc<azure_blocks::Blocks>),
    Paged(Arc<dyn PaginatedListStore>),
}

/// One page of `prefix` (a full object prefix), its request under the retry policy (Azure's
/// through its sender, object_store's here); `errs` maps an object_store error, names the
/// listed key and counts in the store's tally.
async fn fetch_page(
    lister: Lister,
    errs: (ErrCtx, Arc<hbcp_store::retry::Tally>, String),
    prefix: Option<String>,
    delimited: bool,
    token: Option<String>,
    max_keys: Option<usize>,
) -> Result<Page> {
    let az = match lister {
        Lister::Azure(az) => az,
        Lister::Paged(pager) => {
            let (ctx, tally, key) = errs;
            let r = policy::retried(&tally, || {
                let opts = PaginatedListOptions {
                    delimiter: delimited.then_some("/".into()),
                    page_token: token.clone(),
                    max_keys,
                    ..Default::default()
                };
                let f = pager.list_paginated(prefix.as_deref(), opts);
                let (ctx, key) = (&ctx, &key);
                async move { f.await.map_err(|e| ctx.map("list", key, e)) }
            })
            .await?;
            return Ok(Page {
                objects: r.result.objects.iter().map(Listed::from).collect(),
                prefixes: r
                    .result
                    .common_prefixes
                    .iter()
                    .map(|p| format!("{}/", p.as_ref()))
                    .collect(),
                token: r.page_token,
            });
        }
    };
    let p = az
        .list_page(prefix.as_deref(), delimited, token.as_deref(), max_keys)
        .await?;
    Ok(Page {
        objects: p
            .blobs
            .into_iter()
            .map(|b| Listed {
                location: b.name,
                size: b.size,
                e_tag: b.etag,
                modified: b.modified,
                folder: Some(b.folder),
                page: b.page,
            })
            .collect(),
        prefixes: p.prefixes,
        token: p.next,
    })
}

impl<S: ObjectStore + MultipartStore> Store for CloudStore<S> {
    fn describe(&self) -> String {
        self.display.clone()
    }

    fn retry_tally(&self) -> Option<&hbcp_store::retry::Tally> {
        Some(&self.tally)
    }

    fn caps(&self) -> Caps {
        self.caps
    }

    fn list(&self, prefix: &str, sink: &ListSink<'_>) -> Result<()> {
        self.list_paged(prefix, sink, &|_| {})
    }

    fn list_paged(
        &self,
        prefix: &str,
        sink: &ListSink<'_>,
        page: &(dyn Fn(Duration) + Sync),
    ) -> Result<()> {
        let full = match (self.prefix.is_empty(), prefix.is_empty()) {
            (true, true) => None,
            (true, false) => Some(prefix.trim_end_matches('/').to_string()),
            (false, true) => Some(self.prefix.clone()),
            (false, false) => Some(format!("{}/{}", self.prefix, prefix.trim_end_matches('/'))),
        };
        let p = match &full {
            Some(f) => Some(Path::parse(f).map_err(|e| Error::BadKey {
                key: prefix.into(),
                why: e.to_string(),
            })?),
            None => None,
        };
        let Some(pager) = &self.pager else {
            // No pages to see (the in-memory store): one stream, timed as one page.
            let t0 = Instant::now();
            let inner = self.inner.clone();
            let r = self.block(async {
                let mut stream = inner.list(p.as_ref());
                while let Some(item) = stream.next().await {
                    let meta = item.map_err(|e| self.err("list", prefix, e))?;
                    if let Some(e) = self.classify(prefix, Listed::from(&meta)).await? {
                        sink(e)?;
                    }
                }
                Ok(())
            });
            page(t0.elapsed());
            return r;
        };
        // A paged listing takes the prefix as it is: the folder's own `/` is added here.
        let top = p.map(|p| format!("{}/", p.as_ref()));
        self.block(self.walk(pager, top, prefix, sink, page))
    }
    fn head(&self, key: &str) -> Result<Option<Entry>> {
        let p = self.path(key)?;
        if self.kind != "azure" {
            let marker = self.path(&format!("{key}/{DIR_MARKER}"))?;
            if let Ok(Some(m)) = self.call_opt("head", key, || self.inner.head(&marker)) {
                return Ok(Some(entry_of(
                    key.to_string(),
                    &Listed::from(&m),
                    EntryKind::Dir,
                )));
            }
        }
        if let Some(az) = &self.azure {
            // One HEAD answers all: the blob's properties, its metadata (an HDInsight folder
            // marker is a 0-byte blob with hdi_isfolder=true) and its type (a page blob holds
            // a file shorter than the blob, read through its pages).
            let loc = p.as_ref().to_string();
            let Some(h) = self.block(az.head_blob(&loc))? else {
                return Ok(None);
            };
            let kind = if h.size == 0 && h.folder {
                EntryKind::Dir
            } else {
                EntryKind::File
            };
            let mut meta = Listed {
                location: loc.clone(),
                size: h.size,
                e_tag: h.etag,
                modified: h.modified,
                folder: Some(h.folder),
                page: h.page,
            };
            if h.page {
                meta.size = self.block(self.page_file_len(key, &loc))?;
            }
            return Ok(Some(entry_of(key.to_string(), &meta, kind)));
        }
        Ok(self
            .call_opt("head", key, || self.inner.head(&p))?
            .map(|m| entry_of(key.to_string(), &Listed::from(&m), EntryKind::File)))
    }

    fn read_range(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let bytes = self.read_range_bytes(key, range, version)?;
        buf.clear();
        buf.extend_from_slice(&bytes);
        Ok(())
    }

    fn read_range_bytes(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
    ) -> Result<bytes::Bytes> {
        if range.start == range.end {
            // A zero-length read still checks existence and version.
            return match self.head(key)? {
                None => Err(Error::NotFound { key: key.into() }),
                Some(e) if version.is_some() && e.version.as_deref() != version => {
                    Err(Error::Changed {
                        key: key.into(),
                        why: "the ETag changed".into(),
                    })
                }
                Some(_) => Ok(bytes::Bytes::new()),
            };
        }
        if let Some(len) = self.page_len(key) {
            return self.read_pages(key, len, range, version);
        }
        let p = self.path(key)?;
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            if_match: version.map(|v| format!("\"{}\"", v.trim_matches('"'))),
            ..Default::default()
        };
        let bytes = self.block(self.get_bytes("read", key, &p, opts))?;
        let want = range.end - range.start;
        if (bytes.len() as u64) < want {
            return Err(Error::ShortRead {
                key: key.into(),
                offset: range.start + bytes.len() as u64,
                wanted: want - bytes.len() as u64,
            });
        }
        Ok(bytes.slice(..want as usize))
    }

    fn read_range_to(
        &self,
        key: &str,
        range: Range<u64>,
        version: Option<&str>,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        if range.start == range.end || self.page_len(key).is_some() {
            let b = self.read_range_bytes(key, range, version)?;
            return sink(&b);
        }
        let p = self.path(key)?;
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            if_match: version.map(|v| format!("\"{}\"", v.trim_matches('"'))),
            ..Default::default()
        };
        let want = range.end - range.start;
        // One GET for the whole range; its body is handed on as it arrives, so memory stays at
        // the HTTP client's few buffered chunks whatever the range size.
        let got = self.block(async {
            // The request is retried under the policy; a body cut off once the sink has seen
            // part of it is the caller's to resume after that part.
            let res = self
                .req("read", key, || self.inner.get_opts(&p, opts.clone()))
                .await?;
            let mut stream = res.into_stream();
            let mut got = 0u64;
            while got < want {
                let Some(chunk) = stream.next().await else {
                    break;
                };
                let chunk = chunk.map_err(|e| self.err("read", key, e))?;
                let take = chunk.len().min((want - got) as usize);
                sink(&chunk[..take])?;
                got += take as u64;
            }
            Ok::<u64, Error>(got)
        })?;
        if got < want {
            return Err(Error::ShortRead {
                key: key.into(),
                offset: range.start + got,
                wanted: want - got,
            });
        }
        Ok(())
    }

    fn put_bytes(&self, key: &str, data: bytes::Bytes) -> Result<Option<String>> {
        let p = self.path(key)?;
        if let Some(g) = &self.gcs {
            // The JSON API's answer carries no ETag of the kind a HEAD shows: no token.
            return self.block(g.put(p.as_ref(), data)).map(|()| None);
        }
        if let Some(az) = self.azure.as_ref().filter(|a| a.put_md5) {
            return self.block(az.put_blob(p.as_ref(), data));
        }
        self.call_os("write", key, || {
            self.inner.put(&p, PutPayload::from(data.clone()))
        })
        .map(|r| unquoted(r.e_tag.as_deref()))
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        if self.azure.as_ref().is_some_and(|a| a.put_md5) || self.gcs.is_some() {
            return self
                .put_bytes(key, bytes::Bytes::copy_from_slice(data))
                .map(|_| ());
        }
        let p = self.path(key)?;
        let data = bytes::Bytes::copy_from_slice(data);
        self.call_os("write", key, || {
            self.inner.put(&p, PutPayload::from(data.clone()))
        })
        .map(|_| ())
    }

    fn begin_upload(
        &self,
        key: &str,
        size: u64,
        part_size: u64,
        job: &str,
    ) -> Result<Arc<dyn Upload>> {
        let p = self.path(key)?;
        if let Some(az) = &self.azure {
            let up = az.begin(self.rt.handle(), key, p.as_ref(), size, part_size, job)?;
            return Ok(Arc::new(up));
        }
        if let Some(g) = &self.gcs {
            let up = g.begin(self.rt.handle(), key, p.as_ref(), size, part_size, job)?;
            return Ok(Arc::new(up));
        }
        // S3: an open upload of this key whose parts fit the plan is continued (a killed run's
        // parts are not sent again); otherwise a new one is started.
        // Without the right to list uploads (s3:ListBucketMultipartUploads) or on any error of
        // that listing, the file is simply uploaded again from its first part.
        let found = match &self.s3 {
            Some(s3) if size > part_size => self
                .block(s3.find(p.as_ref(), size, part_size))
                .unwrap_or_else(|e| {
                    tracing::debug!(target: "hbcp::s3", "no resume for {key}: {e}");
                    None
                }),
            _ => None,
        };
        let (id, parts, resumed) = match found {
            Some(r) => {
                let parts: Vec<Option<PartId>> = r
                    .etags
                    .iter()
                    .map(|e| e.clone().map(|content_id| PartId { content_id }))
                    .collect();
                let resumed = parts
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        p.as_ref()
                            .map(|_| part_size.min(size - i as u64 * part_size))
                    })
                    .collect();
                (r.upload_id, parts, resumed)
            }
            None => {
                let id = self.call_os("start upload", key, || self.inner.create_multipart(&p))?;
                (id, Vec::new(), Vec::new())
            }
        };
        Ok(Arc::new(CloudUpload {
            inner: self.inner.clone(),
            handle: self.rt.handle().clone(),
            path: p,
            key: key.to_string(),
            id,
            parts: Mutex::new(parts),
            resumed,
            ctx: self.ctx(),
            tally: self.tally.clone(),
            s3: self.s3.clone(),
        }))
    }

    fn content_md5(&self, key: &str) -> Result<Option<[u8; 16]>> {
        match &self.azure {
            Some(az) => {
                let p = self.path(key)?;
                self.block(az.content_md5(p.as_ref()))
            }
            None => match &self.gcs {
                Some(g) => {
                    let p = self.path(key)?;
                    self.block(g.content_md5(p.as_ref()))
                }
                None => Ok(None),
            },
        }
    }

    fn service_md5(&self, key: &str) -> Result<Option<[u8; 16]>> {
        let p = self.path(key)?;
        match (&self.azure, &self.gcs) {
            // Azure computes Content-MD5 on Put Blob (and checks it when sent).
            (Some(az), _) => self.block(az.content_md5(p.as_ref())),
            (None, Some(g)) => self.block(g.service_md5(p.as_ref())),
            // S3: the ETag of a single-part object stored without SSE-KMS / SSE-C.
            (None, None) if self.kind == "s3" => Ok(self
                .call_opt("head", key, || self.inner.head(&p))?
                .and_then(|m| m.e_tag.as_deref().and_then(listed_md5::s3_etag_md5))),
            (None, None) => Ok(None),
        }
    }

    fn list_service_md5(&self, prefix: &str, sink: &hbcp_store::Md5Sink<'_>) -> Result<bool> {
        self.listed_md5s(prefix, sink)
    }

    fn puts_have_service_md5(&self) -> bool {
        // A whole file is one Put Blob (Azure), one upload (GCS) or one PutObject (S3): the
        // service computes its MD5 (S3's ETag, an MD5 only without SSE-KMS / SSE-C: an
        // encrypted object's never matches, and it is read back).
        self.azure.is_some() || self.gcs.is_some() || self.kind == "s3"
    }

    fn copy_within(&self, from: &str, to: &str) -> Result<()> {
        let (f, t) = (self.path(from)?, self.path(to)?);
        if let Some(g) = &self.gcs {
            return self.block(g.rewrite(f.as_ref(), t.as_ref()));
        }
        self.call_os("copy", from, || self.inner.copy(&f, &t))
    }

    fn copy_source(&self, key: &str, version: Option<&str>) -> Result<CopySource> {
        let p = self.path(key)?;
        if let Some(s3) = &self.s3 {
            return Ok(s3_copy::copy_source(s3, p.as_ref(), version));
        }
        if let Some(g) = &self.gcs {
            return Ok(CopySource {
                service: format!("gcs {}", g.base),
                bucket: g.bucket.clone(),
                object: p.as_ref().to_string(),
                url: None,
                auth: None,
                version: match version {
                    Some(v) => Some(self.gcs_generation(key, &p, v)?),
                    None => None,
                },
            });
        }
        match &self.azure {
            Some(az) => self.block(azure_copy::copy_source(az, p.as_ref(), version)),
            None => Err(Error::Unsupported {
                what: format!("server-side copy from {key}"),
                hint: "this store cannot be read by another service".into(),
            }),
        }
    }

    fn copy_from(&self, key: &str, src: &CopySource, size: u64) -> Result<Option<String>> {
        let p = self.path(key)?;
        let unsupported = |hint: &str| Error::Unsupported {
            what: format!("server-side copy to {key}"),
            hint: hint.into(),
        };
        let r = if let Some(s3) = &self.s3 {
            if size > s3_copy::COPY_OBJECT_MAX {
                return Err(unsupported("larger than one CopyObject copies; streamed"));
            }
            self.block(s3_copy::copy_from(s3, key, p.as_ref(), src))
        } else if let Some(g) = &self.gcs {
            if src.service != format!("gcs {}", g.base) {
                return Err(unsupported(
                    "the source is not on this GCS endpoint; streamed",
                ));
            }
            // The rewrite's answer is not read for a version: the engine asks a HEAD.
            let r = self.block(g.rewrite_from(
                &src.bucket,
                &src.object,
                src.version.as_deref(),
                p.as_ref(),
            ));
            match r {
                // The generation named (`sourceGeneration`) is gone: overwritten since.
                Err(Error::NotFound { .. }) if src.version.is_some() => Err(Error::Changed {
                    key: format!("server-side copy to {key}"),
                    why: "the generation listed is gone (HTTP 404); a rerun copies the new one"
                        .into(),
                }),
                r => r.map(|()| None),
            }
        } else if let Some(az) = &self.azure {
            if src.service != "azure" {
                return Err(unsupported("the source is not Azure; streamed"));
            }
            if size > azure_copy::COPY_FROM_URL_MAX {
                return Err(unsupported(
                    "larger than one Copy Blob From URL copies; streamed",
                ));
            }
            self.block(azure_copy::copy_from(az, p.as_ref(), src))
        } else {
            return Err(unsupported("this store has no server-side copy; streamed"));
        };
        not_served(r, || format!("server-side copy to {key}"))
    }

    fn copies_ranges(&self) -> bool {
        // S3 UploadPartCopy, Azure Put Block From URL. GCS has no ranged copy: a rewrite
        // copies a whole object (and continues itself with its rewriteToken).
        self.s3.is_some() || self.azure.is_some()
    }

    fn put_if(&self, key: &str, data: &[u8], cond: PutIf<'_>) -> Result<Option<String>> {
        let p = self.path(key)?;
        if let Some(g) = &self.gcs {
            // The token is the generation; 0 asks for "no such object".
            let generation = match cond {
                PutIf::Absent => "0",
                PutIf::Version(t) => t,
            };
            let data = bytes::Bytes::copy_from_slice(data);
            return self.block(g.put_if_generation(p.as_ref(), data, generation));
        }
        let mode = match cond {
            PutIf::Absent => PutMode::Create,
            PutIf::Version(token) => PutMode::Update(version_of_token(token)),
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        let data = bytes::Bytes::copy_from_slice(data);
        self.call(|| {
            let f = self
                .inner
                .put_opts(&p, PutPayload::from(data.clone()), opts.clone());
            async move {
                match f.await {
                    Ok(r) => Ok(Some(token_of(r.e_tag, r.version))),
                    Err(object_store::Error::AlreadyExists { .. })
                    | Err(object_store::Error::Precondition { .. })
                    | Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(self.err("write", key, e)),
                }
            }
        })
    }

    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, String)>> {
        let p = self.path(key)?;
        if let Some(g) = &self.gcs {
            return self.block(g.get_with_generation(p.as_ref()));
        }
        self.call_opt("read", key, || async {
            let got = self.inner.get_opts(&p, GetOptions::default()).await?;
            let token = token_of(got.meta.e_tag.clone(), got.meta.version.clone());
            let data = got.bytes().await?;
            Ok((data.to_vec(), token))
        })
    }

    fn make_dir(&self, key: &str) -> Result<()> {
        let p = if self.kind == "azure" {
            self.path(key)?
        } else {
            self.path(&format!("{key}/{DIR_MARKER}"))?
        };
        if let Some(g) = &self.gcs {
            return self.block(g.put(p.as_ref(), bytes::Bytes::new()));
        }
        let mut attrs = Attributes::new();
        if self.kind == "azure" {
            attrs.insert(Attribute::Metadata(FOLDER_META.into()), "true".into());
        }
        let opts = PutOptions {
            attributes: attrs,
            ..Default::default()
        };
        self.call_os("make folder", key, || {
            self.inner.put_opts(&p, PutPayload::default(), opts.clone())
        })
        .map(|_| ())
    }

    fn delete(&self, key: &str) -> Result<()> {
        if self.kind != "azure" {
            let marker = self.path(&format!("{key}/{DIR_MARKER}"))?;
            let _ = self.call_opt("delete", key, || self.inner.delete(&marker));
        }
        let p = self.path(key)?;
        if let Some(az) = &self.azure {
            // One Delete Blob: object_store deletes through a blob batch, which Azurite
            // answers 500 under an account SAS.
            return self.block(az.delete_blob(p.as_ref()));
        }
        self.call_opt("delete", key, || self.inner.delete(&p))
            .map(|_| ())
    }
}

/// A server-side copy the service does not implement (an emulator's 501) is
/// [`Error::Unsupported`], so that the engine copies the file another way; one the service
/// refused because the source is no longer the version named ([`CopySource::version`]: 412)
/// is [`Error::Changed`], so that the file fails named and nothing of it is committed.
fn not_served<T>(r: Result<T>, what: impl FnOnce() -> String) -> Result<T> {
    match r {
        Err(Error::Remote {
            status: Some(s @ 412),
            ..
        }) => Err(Error::Changed {
            key: what(),
            why: format!(
                "the service refused to copy the version listed (HTTP {s}); a rerun copies \
                 the new one"
            ),
        }),
        Err(Error::Remote {
            status: Some(501),
            message,
            ..
        }) => Err(Error::Unsupported {
            what: what(),
            hint: format!("the service answered {message}"),
        }),
        other => other,
    }
}

/// The version token of [`Store::put_if`]: the ETag and the object version (GCS's generation),
/// exactly as the service gave them, on two lines.
fn token_of(e_tag: Option<String>, version: Option<String>) -> String {
    format!(
        "{}\n{}",
        e_tag.unwrap_or_default(),
        version.unwrap_or_default()
    )
}

fn version_of_token(token: &str) -> UpdateVersion {
    let (e, v) = token.split_once('\n').unwrap_or((token, ""));
    UpdateVersion {
        e_tag: (!e.is_empty()).then(|| e.to_string()),
        version: (!v.is_empty()).then(|| v.to_string()),
    }
}

/// A multipart upload: parts from any thread, committed in index order.
struct CloudUpload<S> {
    inner: Arc<S>,
    handle: tokio::runtime::Handle,
    path: Path,
    key: String,
    id: String,
    parts: Mutex<Vec<Option<PartId>>>,
    /// Sizes of the parts found already uploaded by an earlier run (S3), by index.
    resumed: Vec<Option<u64>>,
    /// The store's error mapping and retry tally.
    ctx: ErrCtx,
    tally: Arc<hbcp_store::retry::Tally>,
    /// S3: the signed requests object_store does not send (UploadPartCopy).
    s3: Option<Arc<s3_parts::S3Parts>>,
}

impl<S> fmt::Debug for CloudUpload<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudUpload")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<S: ObjectStore + MultipartStore> CloudUpload<S> {
    /// Run one request (built afresh each try) under the retry policy, its error mapped.
    fn call<T, F, Fut>(&self, op: &str, mut send: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = object_store::Result<T>>,
    {
        self.handle.block_on(policy::retried(&self.tally, || {
            let f = send();
            async move { f.await.map_err(|e| self.ctx.map(op, &self.key, e)) }
        }))
    }
}

impl<S: ObjectStore + MultipartStore> Upload for CloudUpload<S> {
    fn put_part(&self, index: u32, offset: u64, data: &[u8]) -> Result<()> {
        self.put_part_bytes(index, offset, bytes::Bytes::copy_from_slice(data))
    }

    fn put_part_bytes(&self, index: u32, _offset: u64, data: bytes::Bytes) -> Result<()> {
        let part = self.call("write part", || {
            self.inner.put_part(
                &self.path,
                &self.id,
                index as usize,
                PutPayload::from(data.clone()),
            )
        })?;
        let mut parts = self.parts.lock().unwrap();
        if parts.len() <= index as usize {
            parts.resize(index as usize + 1, None);
        }
        parts[index as usize] = Some(part);
        Ok(())
    }

    fn put_part_from(&self, index: u32, src: &CopySource, range: Range<u64>) -> Result<()> {
        let what = || format!("server-side copy of part {index} of {}", self.key);
        let Some(s3) = &self.s3 else {
            return Err(Error::Unsupported {
                what: what(),
                hint: "this store copies whole objects only".into(),
            });
        };
        let etag = not_served(
            self.handle.block_on(s3_copy::copy_part(
                s3,
                &self.key,
                self.path.as_ref(),
                &self.id,
                index,
                src,
                range,
            )),
            what,
        )?;
        let mut parts = self.parts.lock().unwrap();
        if parts.len() <= index as usize {
            parts.resize(index as usize + 1, None);
        }
        parts[index as usize] = Some(PartId { content_id: etag });
        Ok(())
    }

    fn commit(&self) -> Result<Option<String>> {
        let parts: Vec<PartId> = {
            let g = self.parts.lock().unwrap();
            let mut v = Vec::with_capacity(g.len());
            for (i, p) in g.iter().enumerate() {
                match p {
                    Some(p) => v.push(p.clone()),
                    None => {
                        return Err(Error::Remote {
                            what: format!("commit {}", self.key),
                            message: format!("part {i} was never written"),
                            status: None,
                            retryable: false,
                        });
                    }
                }
            }
            v
        };
        self.call("commit", || {
            self.inner
                .complete_multipart(&self.path, &self.id, parts.clone())
        })
        .map(|r| unquoted(r.e_tag.as_deref()))
    }

    fn abort(&self) -> Result<()> {
        let _ = self.call("abort", || self.inner.abort_multipart(&self.path, &self.id));
        Ok(())
    }

    fn is_resumed(&self) -> bool {
        self.resumed.iter().any(Option::is_some)
    }

    fn has_part(&self, index: u32, len: u64) -> bool {
        self.resumed.get(index as usize).copied().flatten() == Some(len)
    }
}

/// What `hbcp auth URL` found out about one permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probed {
    /// Granted: what was done to find out.
    Granted(String),
    /// Missing: the one-line error the service's refusal gave.
    Missing(String),
    /// Not found out (the reason).
    Untested(String),
}

/// The permissions hbcp may use under a root, each probed once.
#[derive(Debug, Clone)]
pub struct AuthReport {
    /// The credential in use.
    pub credential: Option<Credential>,
    /// `list`, `write`, `read`, `delete`, in that order, with what was found.
    pub checks: Vec<(&'static str, Probed)>,
    /// A probe object that could not be removed (its key under the root).
    pub left_behind: Option<String>,
}

/// Probe what the credential of `url` may do under its root: list (one entry), write a small
/// temporary object, read it back, delete it. Without the right to write, reading is proven
/// by a HEAD and deleting by a DELETE of a key that does not exist (the service checks the
/// permission before the key). An endpoint that cannot be used at all (unreachable, credential
/// refused, no container) is the error.
pub fn probe(url: &StoreUrl, opts: &CloudOptions) -> Result<AuthReport> {
    let list_opts = CloudOptions {
        check: Check::List,
        create_container: false,
        ..opts.clone()
    };
    let mut checks = Vec::new();
    let (store, opened) = match open(url, &list_opts) {
        Ok(s) => {
            checks.push(("list", Probed::Granted("listed the root".into())));
            s
        }
        Err(e @ Error::Access { .. })
            if matches!(
                &e,
                Error::Access {
                    problem: Problem::Forbidden { .. },
                    ..
                }
            ) =>
        {
            checks.push(("list", Probed::Missing(e.to_string())));
            let plain = CloudOptions {
                check: Check::None,
                create_container: false,
                ..opts.clone()
            };
            open(url, &plain)?
        }
        Err(e) => return Err(e),
    };
    let key = format!(
        ".hbcp-auth-probe-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let data = format!("hbcp auth probe {key}\n").into_bytes();
    let missing = |e: Error| {
        if e.is_auth() {
            Probed::Missing(e.to_string())
        } else {
            Probed::Untested(e.to_string())
        }
    };
    let wrote = match store.put(&key, &data) {
        Ok(()) => {
            checks.push(("write", Probed::Granted(format!("wrote {key}"))));
            true
        }
        Err(e) => {
            checks.push(("write", missing(e)));
            false
        }
    };
    let absent = format!("{key}.absent");
    let read = if wrote {
        match store.read_range_bytes(&key, 0..data.len() as u64, None) {
            Ok(b) if b.as_ref() == data.as_slice() => {
                Probed::Granted(format!("read {key} back, byte-equal"))
            }
            Ok(_) => Probed::Untested(format!("{key} read back differs from what was written")),
            Err(e) => missing(e),
        }
    } else {
        match store.head(&absent) {
            Ok(_) => {
                Probed::Granted("asked for the properties of a key that does not exist".into())
            }
            Err(e) => missing(e),
        }
    };
    checks.push(("read", read));
    let target = if wrote { &key } else { &absent };
    let mut left_behind = None;
    match store.delete(target) {
        Ok(()) => checks.push((
            "delete",
            Probed::Granted(if wrote {
                format!("deleted {key}")
            } else {
                "deleted a key that does not exist".into()
            }),
        )),
        Err(e) => {
            if wrote {
                left_behind = Some(key.clone());
            }
            checks.push(("delete", missing(e)));
        }
    }
    Ok(AuthReport {
        credential: opened.credential,
        checks,
        left_behind,
    })
}
