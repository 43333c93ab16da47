//! The submission role of the SMTP session (RFC 6409): AUTH over TLS (RFC 4954) and what
//! happens to a submitted message — sender checks, added Date/Message-ID, DKIM signing, the
//! outbound queue for remote recipients and final delivery for local ones.

use tokio::io::{AsyncRead, AsyncWrite};

use super::*;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// AUTH PLAIN / LOGIN (RFC 4954), on the submission ports and only over TLS.
    pub(super) async fn auth(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
    ) -> Result<Reply, Interrupted> {
        let authenticator = match (&self.ctx.auth, self.ctx.role) {
            (Some(authenticator), Role::Submission) => authenticator.clone(),
            _ => {
                return Ok(Reply::new(
                    503,
                    "5.5.1",
                    "AUTH is not available on this port",
                ));
            }
        };
        if self.helo.is_none() || !self.esmtp {
            return Ok(Reply::new(503, "5.5.1", "Send EHLO first"));
        }
        if !self.conn.is_tls() {
            return Ok(Reply::new(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            ));
        }
        if self.user.is_some() {
            return Ok(Reply::new(503, "5.5.1", "Already authenticated"));
        }
        if self.transaction.is_some() {
            return Ok(Reply::new(
                503,
                "5.5.1",
                "AUTH not allowed during a mail transaction",
            ));
        }
        let credentials = match mechanism {
            "PLAIN" => {
                let response = match initial {
                    Some(initial) => submission::decode_response(initial.as_bytes()),
                    None => match self.challenge("").await? {
                        Ok(response) => Ok(response),
                        Err(reply) => return Ok(reply),
                    },
                };
                response.and_then(|r| submission::decode_plain(&r))
            }
            "LOGIN" => {
                let user = match initial {
                    Some(initial) => submission::decode_response(initial.as_bytes()),
                    None => match self.challenge("VXNlcm5hbWU6").await? {
                        Ok(response) => Ok(response),
                        Err(reply) => return Ok(reply),
                    },
                };
                let user = match user.and_then(|u| submission::decode_text(&u)) {
                    Ok(user) => user.expose().clone(),
                    Err(error) => return Ok(error.reply()),
                };
                match self.challenge("UGFzc3dvcmQ6").await? {
                    Ok(password) => submission::decode_text(&password).map(|p| (user, p)),
                    Err(reply) => return Ok(reply),
                }
            }
            _ => {
                return Ok(Reply::new(504, "5.5.4", "Unrecognized authentication type"));
            }
        };
        let (user, password): (String, Secret<String>) = match credentials {
            Ok(credentials) => credentials,
            Err(error) => return Ok(error.reply()),
        };
        Ok(
            match authenticator.login(&user, &password, self.peer.ip()).await {
                Ok(account) => {
                    tracing::info!(peer = %self.peer, %account, "smtp login");
                    self.user = Some(account);
                    self.conn.set_deadline(None);
                    Reply::new(235, "2.7.0", "Authentication successful")
                }
                Err(AuthError::Failed) => {
                    Reply::new(535, "5.7.8", "Authentication credentials invalid")
                }
                Err(AuthError::Throttled) => {
                    Reply::new(454, "4.7.0", "Too many failed logins, try again later")
                }
                Err(error) => {
                    tracing::error!(%error, "authentication failed");
                    Reply::new(454, "4.7.0", "Temporary authentication failure")
                }
            },
        )
    }

    /// Sends a `334` challenge and reads the client's response line.
    async fn challenge(
        &mut self,
        prompt: &str,
    ) -> Result<Result<Secret<Vec<u8>>, Reply>, Interrupted> {
        self.conn
            .output()
            .extend_from_slice(format!("334 {prompt}\r\n").as_bytes());
        self.conn.write(&[]).await?;
        Ok(match self.conn.read_line(MAX_AUTH_LINE).await? {
            Line::TooLong => Err(Reply::new(
                500,
                "5.5.6",
                "Authentication exchange line is too long",
            )),
            Line::Complete(line) => {
                submission::decode_response(&line).map_err(|e: SaslError| e.reply())
            }
        })
    }

    /// The end of a submitted message: the header section checked (one From: and Sender: at
    /// most, each of their addresses the account's), trace and missing header fields (From:
    /// too) in front, then queued (remote recipients) and delivered (local ones), each durably.
    pub(super) async fn submit(
        &mut self,
        transaction: &Transaction,
        spool: SpoolWriter,
    ) -> Result<(), Reply> {
        let Some(user) = self.user.clone() else {
            return Err(Reply::new(530, "5.7.0", "Authentication required"));
        };
        let failed = |error: StoreError| {
            tracing::error!(%error, "submission failed");
            store_error_reply(&error)
        };
        let store = self.ctx.store.clone();
        let unique = format!(
            "{}.{}.{}",
            self.id,
            self.delivered + 1,
            rand_u16(&self.peer)
        );
        let trace = self.trace_headers(transaction);
        let hostname = self.ctx.config.hostname.clone();
        let sender = transaction
            .reverse_path
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let sends = !transaction.remote.is_empty();
        let delivers = !sends || !transaction.accounts.is_empty();
        let dkim = self.ctx.dkim.clone().filter(|_| sends);
        let mut writers = Vec::with_capacity(2);
        for _ in 0..usize::from(sends) + usize::from(delivers) {
            writers.push(store.spool().await.map_err(failed)?);
        }
        let account = user.clone();
        let signer = sender.clone();
        // The file work of the end of a submission is one trip to the blocking pool: finish
        // the received file, read its header section, then write the copies (was one trip per
        // open, read and write, each two thread wake-ups: what a submission waited on most,
        // issue #14).
        let prepared = on_blocking_pool(move || {
            let message = spool.finish_blocking()?;
            let facts = submission::header_facts(&message)?;
            if let Some(refusal) = facts.refusal() {
                return Ok(Err(refusal));
            }
            let prefix = format!(
                "{trace}{}",
                submission::missing_headers(&facts, &account, &hostname, &unique)
            );
            let mut prefixes = Vec::with_capacity(2);
            if sends {
                prefixes.push(prefix.clone());
            }
            // Final delivery here: the local copy gets the Return-Path the outgoing one lacks.
            if delivers {
                prefixes.push(format!("Return-Path: <{signer}>\r\n{prefix}"));
            }
            // Sign what may leave: its header section was read whole and holds one From: at
            // most (`refusal`); whether that From: is the account's is checked below, before
            // anything is queued.
            let mut signing = dkim.as_ref().and_then(|dkim| dkim.start(&signer));
            let copies = submission::rewrite(
                writers.into_iter().zip(prefixes).collect(),
                message,
                |bytes| {
                    if let Some(signing) = &mut signing {
                        signing.write(bytes);
                    }
                },
            )?;
            let signature = signing.and_then(|s| s.finish()).unwrap_or_default();
            Ok(Ok((facts, copies, signature)))
        })
        .await
        .map_err(failed)?;
        let (facts, copies, dkim) = prepared?;
        for from in facts.from.iter().chain(&facts.sender) {
            if !submission::may_send_as(&store, &user, from)
                .await
                .map_err(failed)?
            {
                return Err(Reply::new(
                    550,
                    "5.7.1",
                    format!("<{from}> in From: or Sender: is not one of your addresses"),
                ));
            }
        }
        let mut copies = copies.into_iter();
        let outgoing = if sends { copies.next() } else { None };
        let local = copies.next();
        if let Some(outgoing) = outgoing {
            store
                .enqueue(
                    &outgoing,
                    &sender,
                    transaction.remote.clone(),
                    dkim,
                    now_unix(),
                )
                .await
                .map_err(failed)?;
        }
        if let Some(local) = local {
            let accounts = transaction.accounts.iter().cloned().collect();
            store
                .deliver(local, accounts, now_unix())
                .await
                .map_err(failed)?;
        }
        Ok(())
    }
}

/// Runs file work of a submission on the blocking pool.
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| StoreError::Closed)?
}
