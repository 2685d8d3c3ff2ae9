//! Every request of a cloud store under the one retry policy (`hbcp_store::retry`): object_store
//! retries nothing on its own (`max_retries` 0), and hbcp's own senders (Azure blocks and
//! listings, S3 multipart listings and CopyObject, the GCS JSON API) retry nothing either; each
//! request is sent through [`retried`], which asks [`Tries`] after every answer and counts the
//! throttles and retries in the store's [`Tally`].
//!
//! A request is what is retried, never a compound step: a retried write sends the same bytes
//! again (the body is shared `Bytes`), a retried read asks for the same range again.

use std::future::Future;

use hbcp_store::Result;
use hbcp_store::retry::{Tally, Tries, Verdict};
use object_store::client::{HttpError, HttpErrorKind};

/// Send a request (`send` builds and sends it afresh each time) until the policy says stop.
pub(crate) async fn retried<T, F, Fut>(tally: &Tally, mut send: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = Tries::new(Some(tally));
    loop {
        let attempt = tries.attempt();
        match tries.judge(send().await) {
            Verdict::Return(r) => return r,
            Verdict::Retry { error, wait } => {
                tracing::debug!(
                    target: "hbcp::retry",
                    "try {attempt} failed, again in {} ms: {error}",
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Whether an object_store error without an HTTP status is a transport failure that may pass
/// (the connection failed, was cut or timed out, a body ended early), by the HTTP client's own
/// kind of error; an answer that cannot be decoded, or an error of object_store's own (a path,
/// an answer it does not understand), is not.
pub(crate) fn transport_may_pass(e: &object_store::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(h) = c.downcast_ref::<HttpError>() {
            return h.kind() != HttpErrorKind::Decode;
        }
        cur = c.source();
    }
    false
}
