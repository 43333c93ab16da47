//! Inbound filters of port 25: checks as a list of [`Step`]s, each asked at the SMTP phases it
//! cares about (connect, HELO, MAIL, RCPT, end of data) and answering with a [`Verdict`].
//!
//! - A step refuses (`Tempfail`, `Reject`), vouches for the client (`Trust`), or adds points
//!   and a header field (`Score`). Points add up over the session; at the end of data the
//!   total decides: delivered, delivered to the Junk folder, or refused with 550 5.7.1
//!   ([`Thresholds`]). A message is never dropped silently.
//! - Header fields the steps add are written in one rewrite of the spool file ([`rewrite`]),
//!   with an `X-Spam-Status` field naming the score and its reasons.
//! - A step runs as its own task under a time limit (`limits.filter_step_timeout`): one that
//!   panics or overruns is logged and counts as "accept", so a broken check never loses mail.
//!
//! The steps: `dnslist` (DNS block- and allowlists), `rate` (connections and recipients per
//! client address), `helo` (implausible HELO names), `greylist` (RFC 6647) and `auth`
//! (SPF/DKIM/DMARC). A content classifier plugs in as one more end-of-data step that reads
//! the bounded [`MessageView`].

mod auth;
mod content;
mod dnslist;
mod greylist;
mod helo;
mod rate;
pub mod rewrite;
pub mod settings;

use std::future::Future;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use auth::AuthStep;
pub use content::ContentStep;
pub use dnslist::DnsListStep;
pub use greylist::{GreylistStep, network_of};
pub use helo::HeloStep;
pub use rate::RateStep;
pub use settings::{DnsList, SpamSettings};

use tokio_util::task::AbortOnDropHandle;

use super::proto::Reply;
use super::verify::InboundAuth;
use crate::config::Config;
use crate::store::{SpoolFile, Store};

/// What a step's check resolves to; owned, so it can run as a task of its own.
pub type Check = Pin<Box<dyn Future<Output = Verdict> + Send + 'static>>;

/// One inbound check.
pub trait Step: Send + Sync {
    /// Names the step in logs and in `X-Spam-Status` reasons.
    fn name(&self) -> &'static str;
    /// The check to run at `phase`, or `None` when the step has nothing to say there.
    fn check(&self, phase: &Phase, facts: &Facts) -> Option<Check>;
}

/// Where the session is.
#[derive(Clone)]
pub enum Phase {
    /// Before the banner.
    Connect,
    Helo,
    Mail,
    /// One recipient, as given (`local@domain`).
    Rcpt(String),
    /// The message is spooled and the client waits for the final reply.
    Data(Arc<MessageView>),
}

/// What the end-of-data steps see of the message.
pub struct MessageView {
    /// The first `limits.filter_data_view` octets, trace headers included.
    pub head: Vec<u8>,
    /// The whole message, for a step that reads more within a bound of its own (DKIM).
    pub spool: SpoolFile,
}

/// What the session knows of the client when a step runs.
#[derive(Debug, Clone)]
pub struct Facts {
    pub ip: IpAddr,
    pub helo: Option<String>,
    /// The reverse-path; empty for bounces, `None` before MAIL.
    pub mail_from: Option<String>,
    /// A step has vouched for the client (`Verdict::Trust`): it is not greylisted.
    pub trusted: bool,
}

/// A step's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Accept,
    /// The client is known good (a DNS allowlist): no delays, and its points (usually
    /// negative) count as a `Score`'s.
    Trust(Score),
    /// Points toward spam (negative: toward ham) and a header field to add.
    Score(Score),
    /// 4xx: try again later (this recipient at RCPT, the connection at connect).
    Tempfail(Reply),
    /// 5xx: refused.
    Reject(Reply),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub points: f64,
    /// Why, in a word or two (`DNSBL_zen.spamhaus.org`); empty when `points` is zero.
    pub reason: String,
    /// A whole header field, CRLF-terminated, to put on top of the message.
    pub header: Option<String>,
}

/// The findings so far: the session's (connect, HELO), then each transaction's on top.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub points: f64,
    pub reasons: Vec<(String, f64)>,
    pub headers: Vec<String>,
    pub trusted: bool,
}

impl Tally {
    fn add(&mut self, score: Score) {
        self.points += score.points;
        if score.points != 0.0 {
            self.reasons.push((score.reason, score.points));
        }
        self.headers.extend(score.header);
    }

    /// The `X-Spam-Status` field: "Yes" once the score reaches the junk threshold.
    pub fn status_header(&self, thresholds: &Thresholds) -> String {
        let spam = if thresholds.is_junk(self.points) {
            "Yes"
        } else {
            "No"
        };
        let tests: Vec<String> = self
            .reasons
            .iter()
            .map(|(reason, points)| format!("{reason}({points:+.1})"))
            .collect();
        let tests = if tests.is_empty() {
            "none".to_string()
        } else {
            tests.join(",")
        };
        format!(
            "X-Spam-Status: {spam}, score={:.1} junk={:.1} reject={:.1}\r\n\ttests={tests}\r\n",
            self.points, thresholds.junk, thresholds.reject
        )
    }
}

/// Where a score stops being ham; zero turns a threshold off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub junk: f64,
    pub reject: f64,
}

/// What the end of data leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    Inbox,
    Junk,
    Reject,
}

impl Thresholds {
    pub fn is_junk(&self, points: f64) -> bool {
        self.junk > 0.0 && points >= self.junk
    }

    pub fn judge(&self, points: f64) -> Judgement {
        if self.reject > 0.0 && points >= self.reject {
            Judgement::Reject
        } else if self.is_junk(points) {
            Judgement::Junk
        } else {
            Judgement::Inbox
        }
    }
}

/// The steps of port 25, in the order they run at each phase.
#[derive(Clone)]
pub struct Pipeline {
    steps: Vec<Arc<dyn Step>>,
    timeout: Duration,
    pub thresholds: Thresholds,
}

impl Pipeline {
    /// Port 25's steps as `[spam]` and `[auth]` turn them on: the cheap ones first, so a
    /// client over its rate costs no DNS queries. `auth` checks SPF/DKIM/DMARC (when on).
    pub fn inbound(config: &Config, store: &Store, auth: Option<Arc<InboundAuth>>) -> Self {
        let spam = &config.spam;
        let limits = &config.limits;
        let mut steps: Vec<Arc<dyn Step>> = Vec::new();
        if spam.rate_limits {
            steps.push(Arc::new(RateStep::new(
                limits.smtp_connections_per_minute,
                limits.smtp_recipients_per_hour,
                limits.rate_table_entries,
            )));
        }
        if !spam.dnsbl.is_empty() || !spam.dnswl.is_empty() {
            match crate::outbound::dns::resolver(config) {
                Ok(resolver) => steps.push(Arc::new(DnsListStep::new(
                    Arc::new(resolver),
                    &spam.dnsbl,
                    &spam.dnswl,
                ))),
                Err(error) => tracing::error!(%error, "DNS lists are off: no DNS resolver"),
            }
        }
        if spam.helo_checks {
            steps.push(Arc::new(HeloStep::new(&config.hostname, &config.domains)));
        }
        if spam.greylisting {
            steps.push(Arc::new(GreylistStep::new(
                store.clone(),
                spam.greylist_delay.0,
                limits.greylist_entries,
                &spam.greylist_allow_domains,
                auth.clone(),
            )));
        }
        if let Some(auth) = auth {
            steps.push(Arc::new(AuthStep::new(
                auth,
                config.auth.reject_dmarc_failures,
            )));
        }
        if spam.content_filter {
            steps.push(Arc::new(ContentStep::new(crate::spam::Classifier::new(
                store.clone(),
            ))));
        }
        let thresholds = Thresholds {
            junk: spam.junk_threshold,
            reject: spam.reject_threshold,
        };
        Pipeline::new(steps, limits.filter_step(), thresholds)
    }

    pub fn new(steps: Vec<Arc<dyn Step>>, timeout: Duration, thresholds: Thresholds) -> Self {
        Pipeline {
            steps,
            timeout,
            thresholds,
        }
    }

    /// Runs every step that has something to say at `phase`, adding their findings to
    /// `tally`; the first refusal ends the run and is returned with the step's name.
    pub async fn run(
        &self,
        phase: &Phase,
        facts: &Facts,
        tally: &mut Tally,
    ) -> Option<(&'static str, Reply)> {
        let mut facts = facts.clone();
        for step in &self.steps {
            facts.trusted = tally.trusted;
            let verdict = self.ask(step.as_ref(), phase, &facts).await;
            match verdict {
                Verdict::Accept => {}
                Verdict::Trust(score) => {
                    tally.trusted = true;
                    tally.add(score);
                }
                Verdict::Score(score) => tally.add(score),
                Verdict::Tempfail(reply) | Verdict::Reject(reply) => {
                    return Some((step.name(), reply));
                }
            }
        }
        None
    }

    /// One step's verdict; a panic or a timeout is logged and accepts.
    async fn ask(&self, step: &dyn Step, phase: &Phase, facts: &Facts) -> Verdict {
        let name = step.name();
        let check = match std::panic::catch_unwind(AssertUnwindSafe(|| step.check(phase, facts))) {
            Ok(Some(check)) => check,
            Ok(None) => return Verdict::Accept,
            Err(_) => {
                tracing::error!(step = name, ip = %facts.ip, "filter step panicked; accepted");
                return Verdict::Accept;
            }
        };
        // Its own task: a panic ends the task, not the session; a timeout, or the session
        // ending (shutdown), aborts it.
        let mut task = AbortOnDropHandle::new(tokio::spawn(check));
        match tokio::time::timeout(self.timeout, &mut task).await {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(error)) => {
                tracing::error!(step = name, ip = %facts.ip, %error, "filter step failed; accepted");
                Verdict::Accept
            }
            Err(_) => {
                tracing::error!(
                    step = name,
                    ip = %facts.ip,
                    timeout = ?self.timeout,
                    "filter step timed out; accepted"
                );
                Verdict::Accept
            }
        }
    }
}

#[cfg(test)]
mod tests;
