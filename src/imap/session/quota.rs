//! QUOTA (RFC 9208) with one resource, STORAGE, and one quota root, "", per account. The limit
//! an account sees is its quota (`letterbox user quota`), or what it uses plus what is still
//! free on the data device when that is less, so a client's quota bar shows the card filling
//! up too.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::net::Interrupted;
use crate::status::Storage;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn get_quota_root(
        &mut self,
        tag: &str,
        mailbox: &str,
    ) -> Result<(), Interrupted> {
        let account = self.account().to_string();
        if let Err(error) = self.ctx.store.mailbox_status(&account, mailbox).await {
            self.store_no(tag, &error);
            return Ok(());
        }
        let name = self.wire_name(mailbox);
        self.untagged(&format!("QUOTAROOT {name} \"\"")).await?;
        self.quota_line(tag).await
    }

    pub(super) async fn get_quota(&mut self, tag: &str, root: &str) -> Result<(), Interrupted> {
        if !root.is_empty() {
            self.no(tag, "[NONEXISTENT] The only quota root is \"\"");
            return Ok(());
        }
        self.quota_line(tag).await
    }

    async fn quota_line(&mut self, tag: &str) -> Result<(), Interrupted> {
        let account = self.account().to_string();
        let (used, quota) = match self.ctx.store.quota(&account).await {
            Ok(Some(quota)) => (quota.used, Some(quota.limit)),
            Ok(None) => match self.ctx.store.account_usage(&account).await {
                Ok(used) => (used, None),
                Err(error) => {
                    self.store_no(tag, &error);
                    return Ok(());
                }
            },
            Err(error) => {
                self.store_no(tag, &error);
                return Ok(());
            }
        };
        let free = Storage::of(&self.ctx.config.data_dir).map_or(0, |s| s.free_bytes);
        let limit = quota.map_or(used + free, |quota| quota.min(used + free));
        let (used_kib, limit_kib) = (used.div_ceil(1024), limit / 1024);
        self.untagged(&format!("QUOTA \"\" (STORAGE {used_kib} {limit_kib})"))
            .await?;
        self.ok(tag, "GETQUOTA completed");
        Ok(())
    }
}
