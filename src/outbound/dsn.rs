//! Delivery status notifications (RFC 3464 in a multipart/report, RFC 6522): "failed" for
//! permanent failures and expiry, "delayed" once a message has waited `delay_warning`.
//! They go straight to the INBOX of the sender's account (the sender is always local: only
//! submission queues mail), with the original message's header section attached.

use crate::store::{QueuedMessage, Recipient, Store, StoreError, now_unix};

/// The original header section attached to a DSN is cut at this size.
const MAX_ORIGINAL_HEADERS: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
}

/// One recipient's line in the report.
#[derive(Debug, Clone)]
pub struct RecipientStatus {
    pub address: String,
    /// Enhanced status code, e.g. "5.1.1".
    pub status: String,
    /// What the remote server (or DNS) said.
    pub diagnostic: String,
    pub remote: Option<String>,
}

/// Builds and delivers a DSN for `message` to its sender. Does nothing for the null sender
/// (RFC 5321 §6.1: never bounce a bounce) or a sender that is no longer a local account.
pub async fn notify(
    store: &Store,
    hostname: &str,
    message: &QueuedMessage,
    action: Action,
    recipients: &[RecipientStatus],
    retry_until: i64,
) -> Result<(), StoreError> {
    if message.sender.is_empty() || recipients.is_empty() {
        return Ok(());
    }
    let accounts = match store.recipient(&message.sender).await? {
        Some(Recipient::Account(account)) => vec![account],
        Some(Recipient::Alias(targets)) => targets,
        None => {
            tracing::warn!(sender = %message.sender, "no local account for a DSN; dropped");
            return Ok(());
        }
    };
    let headers = original_headers(store, message.blob).await?;
    let text = render(hostname, message, action, recipients, retry_until, &headers);
    let mut spool = store.spool().await?;
    spool.write(text.as_bytes()).await?;
    let spool = spool.finish().await?;
    store.deliver_notice(spool, accounts, now_unix()).await
}

/// The header section of a stored message (bounded).
async fn original_headers(store: &Store, blob: u64) -> Result<Vec<u8>, StoreError> {
    let mut reader = store.body(blob);
    let mut head = Vec::new();
    while let Some(chunk) = reader.next_chunk().await? {
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk);
        if let Some(end) = head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(from + end + 2);
            return Ok(head);
        }
        if head.len() >= MAX_ORIGINAL_HEADERS {
            head.truncate(MAX_ORIGINAL_HEADERS);
            // Cut at a line end so the attached part stays well formed.
            if let Some(end) = head.windows(2).rposition(|w| w == b"\r\n") {
                head.truncate(end + 2);
            }
            return Ok(head);
        }
    }
    Ok(head)
}

pub fn render(
    hostname: &str,
    message: &QueuedMessage,
    action: Action,
    recipients: &[RecipientStatus],
    retry_until: i64,
    original_headers: &[u8],
) -> String {
    let now = now_unix();
    let date = |t: i64| mail_parser::DateTime::from_timestamp(t).to_rfc822();
    let boundary = format!("{:x}-{}/{hostname}", now, message.id);
    let (subject, explanation) = match action {
        Action::Failed => (
            "Undelivered Mail Returned to Sender",
            "Your message could not be delivered to the recipients below. This is a permanent\r\nerror; the message will not be retried.",
        ),
        Action::Delayed => (
            "Delivery Delayed: message not yet delivered",
            "Your message has not been delivered to the recipients below yet. Delivery will be\r\nretried; you do not need to send it again.",
        ),
    };
    let mut human = String::new();
    for recipient in recipients {
        human.push_str(&format!(
            "  <{}>: {}\r\n",
            recipient.address,
            one_line(&recipient.diagnostic)
        ));
    }
    if action == Action::Delayed {
        human.push_str(&format!(
            "\r\nDelivery will be attempted until {}.\r\n",
            date(retry_until)
        ));
    }
    let mut status = format!(
        "Reporting-MTA: dns; {hostname}\r\nX-Letterbox-Queue-ID: {}\r\nArrival-Date: {}\r\n",
        message.id,
        date(message.queued_at)
    );
    for recipient in recipients {
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
            recipient.address,
            match action {
                Action::Failed => "failed",
                Action::Delayed => "delayed",
            },
            recipient.status
        ));
        if let Some(remote) = &recipient.remote {
            status.push_str(&format!("Remote-MTA: dns; {remote}\r\n"));
        }
        status.push_str(&format!(
            "Diagnostic-Code: smtp; {}\r\nLast-Attempt-Date: {}\r\n",
            one_line(&recipient.diagnostic),
            date(now)
        ));
        if action == Action::Delayed {
            status.push_str(&format!("Will-Retry-Until: {}\r\n", date(retry_until)));
        }
    }
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n\
         To: <{sender}>\r\n\
         Subject: {subject}\r\n\
         Date: {now_date}\r\n\
         Message-ID: <dsn.{now:x}.{id}@{hostname}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated delivery status notification.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Description: Notification\r\n\
         \r\n\
         This is the mail system at {hostname}.\r\n\
         \r\n\
         {explanation}\r\n\
         \r\n\
         {human}\
         \r\n\
         --{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         Content-Description: Delivery report\r\n\
         \r\n\
         {status}\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/rfc822-headers\r\n\
         Content-Description: Undelivered message headers\r\n\
         \r\n\
         {headers}\
         \r\n\
         --{boundary}--\r\n",
        sender = message.sender,
        now_date = date(now),
        id = message.id,
        headers = String::from_utf8_lossy(original_headers),
    )
}

/// Diagnostic text on one line (it comes from remote servers).
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_report_has_the_three_parts() {
        let message = QueuedMessage {
            id: 7,
            sender: "alice@home.test".into(),
            blob: 1,
            size: 10,
            queued_at: 1_700_000_000,
            dkim: String::new(),
            flags: 0,
            recipients: Vec::new(),
        };
        let text = render(
            "mail.home.test",
            &message,
            Action::Failed,
            &[RecipientStatus {
                address: "nobody@example.org".into(),
                status: "5.1.1".into(),
                diagnostic: "550 5.1.1 no such\r\nuser".into(),
                remote: Some("mx.example.org".into()),
            }],
            0,
            b"Subject: hello\r\nFrom: alice@home.test\r\n",
        );
        let parsed = mail_parser::MessageParser::new()
            .parse(text.as_bytes())
            .expect("parses");
        assert_eq!(
            parsed.subject(),
            Some("Undelivered Mail Returned to Sender")
        );
        assert_eq!(parsed.parts.len(), 4, "multipart + 3 parts");
        assert!(text.contains(
            "Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
        assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 no such  user\r\n"));
        assert!(text.contains("Content-Type: text/rfc822-headers\r\nContent-Description: Undelivered message headers\r\n\r\nSubject: hello\r\n"));
    }
}
