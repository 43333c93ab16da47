//! The one rewrite of a received message: the filters' header fields on top, the message
//! below, without the fields a sender may not set itself — an Authentication-Results field
//! that claims to come from this host (RFC 8601 §5), so a sender cannot pass off its own
//! "dkim=pass" as Letterbox's, and any `X-Spam-Status`, so only this host's verdict shows.

use tokio::io::AsyncReadExt;

use crate::limits::BODY_CHUNK;
use crate::smtp::proto::header_filter::{
    HeaderFilter, is_authentication_results_from, is_field_named,
};
use crate::store::{SpoolFile, Store, StoreError};

/// A new spool file with `headers` (whole CRLF-terminated fields) on top of `message`.
pub async fn rewrite(
    store: &Store,
    hostname: &str,
    headers: &str,
    message: SpoolFile,
) -> Result<SpoolFile, StoreError> {
    let mut writer = store.spool().await?;
    writer.write(headers.as_bytes()).await?;
    let hostname = hostname.to_string();
    let mut filter = HeaderFilter::new(move |field| {
        is_authentication_results_from(field, &hostname) || is_field_named(field, "X-Spam-Status")
    });
    let mut file = message.async_reader().await?;
    let mut chunk = vec![0u8; BODY_CHUNK];
    let mut kept = Vec::with_capacity(BODY_CHUNK);
    loop {
        let n = file.read(&mut chunk).await.map_err(StoreError::io)?;
        if n == 0 {
            break;
        }
        filter.feed(&chunk[..n], &mut kept);
        writer.write(&kept).await?;
        kept.clear();
    }
    filter.finish(&mut kept);
    writer.write(&kept).await?;
    drop(message);
    writer.finish().await
}
