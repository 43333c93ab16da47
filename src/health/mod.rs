//! The box checking itself: can mail leave, do the published DNS records match what
//! `letterbox dns-records` says, does the public address have a reverse name that points back,
//! is it on the common blocklists, and is the certificate right. Each check gives a verdict and
//! one sentence saying what to do.
//!
//! The checks run at start, every `[health] interval`, when the settings change and on demand
//! (the admin page's "Check now", `letterbox health`); each gets `HEALTH_CHECK_TIMEOUT`. The last
//! report lives in the status value (memory only): the admin page shows it, `letterbox status`
//! counts it, and every problem becomes an alert on the panel.
//!
//! - `records`: MX, SPF, DKIM and DMARC against `outbound::records`.
//! - `address`: the public address, its reverse name (FCrDNS) and the DNS blocklists.
//! - `reach`: outgoing port 25 (a probe SMTP server's greeting).
//! - `certificate`: the certificate's names and dates.

mod address;
mod certificate;
mod reach;
mod records;

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::limits::HEALTH_CHECK_TIMEOUT;
use crate::status::{Alert, Status};
use crate::units::Seconds;

/// `[health]` in the config file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    /// Whether the checks run by themselves (at start, every `interval`, after a settings
    /// change). Off, they run only when asked (`letterbox health`, "Check now"): for a box
    /// with no Internet on purpose, and the tests.
    pub automatic: bool,
    /// How often the checks run by themselves.
    pub interval: Seconds,
    /// The address the Internet sees this box at. Unset, it is learned from the host name's
    /// A and AAAA records (what other mail servers look up too).
    pub public_address: Option<IpAddr>,
    /// DNS blocklists (RFC 5782) the public address is looked up in.
    pub blocklists: Vec<String>,
    /// An SMTP server out in the Internet, `host:port`: if its greeting arrives, outgoing
    /// port 25 is open.
    pub port25_probe: String,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            automatic: true,
            interval: Seconds(6 * 3600),
            public_address: None,
            blocklists: vec![
                "zen.spamhaus.org".into(),
                "bl.spamcop.net".into(),
                "b.barracudacentral.org".into(),
            ],
            port25_probe: "gmail-smtp-in.l.google.com:25".into(),
        }
    }
}

impl HealthSettings {
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.interval.0 < 60 {
            return Err(("interval", "health.interval must be at least 1m".into()));
        }
        if reach::split_probe(&self.port25_probe).is_none() {
            return Err((
                "port25_probe",
                format!("{:?} is not host:port", self.port25_probe),
            ));
        }
        if let Some(bad) = self
            .blocklists
            .iter()
            .find(|l| !crate::config::is_hostname(l))
        {
            return Err(("blocklists", format!("{bad:?} is not a DNS name")));
        }
        Ok(())
    }
}

/// What is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    OutgoingPort,
    MxRecord,
    Spf,
    Dkim,
    Dmarc,
    ReverseDns,
    Blocklists,
    Certificate,
}

impl Check {
    /// The check's name on the admin page.
    pub fn title(self) -> &'static str {
        match self {
            Check::OutgoingPort => "Sending to other servers (port 25)",
            Check::MxRecord => "Mail server record (MX)",
            Check::Spf => "Who may send (SPF)",
            Check::Dkim => "Signature key (DKIM)",
            Check::Dmarc => "Policy (DMARC)",
            Check::ReverseDns => "Reverse name of the public address",
            Check::Blocklists => "Blocklists",
            Check::Certificate => "Certificate",
        }
    }

    /// At most 16 characters, for the panel's alert title.
    pub fn short_title(self) -> &'static str {
        match self {
            Check::OutgoingPort => "Port 25 blocked",
            Check::MxRecord => "MX record",
            Check::Spf => "SPF record",
            Check::Dkim => "DKIM record",
            Check::Dmarc => "DMARC record",
            Check::ReverseDns => "Reverse DNS",
            Check::Blocklists => "Blocklisted",
            Check::Certificate => "Certificate",
        }
    }

    /// At most 10 characters, for a character panel's alert line.
    pub fn label(self) -> &'static str {
        match self {
            Check::OutgoingPort => "Port 25",
            Check::MxRecord => "MX record",
            Check::Spf => "SPF",
            Check::Dkim => "DKIM",
            Check::Dmarc => "DMARC",
            Check::ReverseDns => "Rev. DNS",
            Check::Blocklists => "Blocklist",
            Check::Certificate => "Cert name",
        }
    }

    /// The alert's stable key (`Alert::key`).
    pub fn alert_key(self) -> &'static str {
        match self {
            Check::OutgoingPort => "health_outgoing_port",
            Check::MxRecord => "health_mx_record",
            Check::Spf => "health_spf",
            Check::Dkim => "health_dkim",
            Check::Dmarc => "health_dmarc",
            Check::ReverseDns => "health_reverse_dns",
            Check::Blocklists => "health_blocklists",
            Check::Certificate => "health_certificate",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    /// The check does not apply to how this box is set up (port 25 with a smarthost).
    NotNeeded,
    Warning,
    Problem,
    /// The check itself failed (no answer from the DNS, a timeout): nothing is known.
    CouldNotCheck,
}

impl Verdict {
    /// The words the admin page and `letterbox health` show.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::NotNeeded => "not needed",
            Verdict::Warning => "warning",
            Verdict::Problem => "problem",
            Verdict::CouldNotCheck => "could not check",
        }
    }
}

/// One check's outcome: what was found and the one thing to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub check: Check,
    pub verdict: Verdict,
    pub found: String,
    pub advice: String,
}

impl Finding {
    fn new(check: Check, verdict: Verdict, found: String, advice: impl Into<String>) -> Finding {
        Finding {
            check,
            verdict,
            found,
            advice: advice.into(),
        }
    }
}

/// Every check's finding, from one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// When the run ended (Unix seconds).
    pub checked_at: i64,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.findings
            .iter()
            .filter(|f| f.verdict == verdict)
            .count()
    }

    /// The human form of `letterbox health`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for finding in &self.findings {
            out.push_str(&format!(
                "{:<15} {:<36} {}\n{:<15} {:<36} {}\n",
                finding.verdict.words().to_uppercase(),
                finding.check.title(),
                finding.found,
                "",
                "",
                finding.advice
            ));
        }
        out
    }
}

/// The alerts a report raises: one per problem.
pub fn alerts(report: Option<&Report>) -> Vec<Alert> {
    report
        .map(|report| {
            report
                .findings
                .iter()
                .filter(|f| f.verdict == Verdict::Problem)
                .map(|f| Alert::Health { check: f.check })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs every check once, each within `HEALTH_CHECK_TIMEOUT`.
pub async fn run_checks(config: &Config) -> Report {
    let resolver = crate::outbound::dns::resolver(config);
    let context = Context {
        config,
        resolver: resolver.as_ref().map_err(|e| e.to_string()),
    };
    let (outgoing, records, address, certificate) = tokio::join!(
        bounded(Check::OutgoingPort, reach::outgoing_port(&context)),
        bounded_many(
            &[Check::MxRecord, Check::Spf, Check::Dkim, Check::Dmarc],
            records::check(&context)
        ),
        bounded_many(
            &[Check::ReverseDns, Check::Blocklists],
            address::check(&context)
        ),
        bounded(
            Check::Certificate,
            std::future::ready(certificate::check(config, crate::store::now_unix()))
        ),
    );
    let mut findings = vec![outgoing];
    findings.extend(records);
    findings.extend(address);
    findings.push(certificate);
    Report {
        checked_at: crate::store::now_unix(),
        findings,
    }
}

/// What the checks share.
struct Context<'a> {
    config: &'a Config,
    /// The resolver of `[dns] nameservers` (or the system's), or why there is none.
    resolver: Result<&'a hickory_resolver::TokioResolver, String>,
}

fn timed_out(check: Check) -> Finding {
    Finding::new(
        check,
        Verdict::CouldNotCheck,
        format!(
            "No answer within {} seconds.",
            HEALTH_CHECK_TIMEOUT.as_secs()
        ),
        "Check that the box is online and its DNS resolver answers, then check again.",
    )
}

async fn bounded(check: Check, run: impl Future<Output = Finding>) -> Finding {
    tokio::time::timeout(HEALTH_CHECK_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| timed_out(check))
}

async fn bounded_many(checks: &[Check], run: impl Future<Output = Vec<Finding>>) -> Vec<Finding> {
    tokio::time::timeout(HEALTH_CHECK_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| checks.iter().map(|c| timed_out(*c)).collect())
}

/// Asks the running checker for a fresh report.
#[derive(Clone)]
pub struct Health {
    requests: mpsc::Sender<oneshot::Sender<Report>>,
}

impl Health {
    /// Runs the checks now (or joins the run in progress) and answers its report; `None` when
    /// the daemon is shutting down.
    pub async fn check_now(&self) -> Option<Report> {
        let (reply, report) = oneshot::channel();
        self.requests.send(reply).await.ok()?;
        report.await.ok()
    }
}

/// Starts the checker: a run at start, then every interval and on every settings change (when
/// `automatic`), and on request; each report is published in the status value with its
/// alerts.
pub fn spawn(
    mut configs: watch::Receiver<Arc<Config>>,
    status: watch::Sender<Status>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> Health {
    // A few people pressing "Check now" at once wait for the same run.
    let (requests, mut incoming) = mpsc::channel::<oneshot::Sender<Report>>(8);
    tracker.spawn(async move {
        let mut next = tokio::time::Instant::now();
        loop {
            let mut waiting = Vec::new();
            let automatic = configs.borrow().health.automatic;
            tokio::select! {
                () = tokio::time::sleep_until(next), if automatic => {}
                Some(reply) = incoming.recv() => waiting.push(reply),
                changed = configs.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // A change that turns the checks off runs nothing.
                    if !configs.borrow().health.automatic {
                        continue;
                    }
                }
                () = shutdown.cancelled() => return,
            }
            // Requests already waiting share this run; one that arrives during it waits for the
            // next, since it may follow a change (a DNS record just published) that this run,
            // started before it, cannot have seen.
            while let Ok(reply) = incoming.try_recv() {
                waiting.push(reply);
            }
            let config = configs.borrow_and_update().clone();
            let report = tokio::select! {
                report = run_checks(&config) => report,
                () = shutdown.cancelled() => return,
            };
            publish(&status, &report);
            for reply in waiting {
                let _ = reply.send(report.clone());
            }
            next = tokio::time::Instant::now() + config.health.interval.duration();
        }
    });
    Health { requests }
}

fn publish(status: &watch::Sender<Status>, report: &Report) {
    status.send_modify(|s| {
        s.alerts.retain(|a| !matches!(a, Alert::Health { .. }));
        s.alerts.extend(alerts(Some(report)));
        s.health = Some(report.clone());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_problems_raise_alerts() {
        let finding = |check, verdict| Finding::new(check, verdict, String::new(), "");
        let report = Report {
            checked_at: 0,
            findings: vec![
                finding(Check::OutgoingPort, Verdict::NotNeeded),
                finding(Check::Spf, Verdict::Warning),
                finding(Check::ReverseDns, Verdict::Problem),
                finding(Check::Blocklists, Verdict::CouldNotCheck),
            ],
        };
        assert_eq!(
            alerts(Some(&report)),
            vec![Alert::Health {
                check: Check::ReverseDns
            }]
        );
        assert_eq!(report.count(Verdict::Problem), 1);
        assert!(alerts(None).is_empty());
    }

    #[test]
    fn settings_are_checked() {
        let mut settings = HealthSettings::default();
        assert!(settings.validate().is_ok());
        settings.port25_probe = "no port".into();
        assert_eq!(settings.validate().map_err(|e| e.0), Err("port25_probe"));
        settings = HealthSettings {
            blocklists: vec!["bad list".into()],
            ..HealthSettings::default()
        };
        assert_eq!(settings.validate().map_err(|e| e.0), Err("blocklists"));
    }

    #[test]
    fn short_titles_fit_the_panel() {
        let all = [
            Check::OutgoingPort,
            Check::MxRecord,
            Check::Spf,
            Check::Dkim,
            Check::Dmarc,
            Check::ReverseDns,
            Check::Blocklists,
            Check::Certificate,
        ];
        for check in all {
            assert!(check.short_title().len() <= 16, "{check:?}");
            assert!(check.label().len() <= 10, "{check:?}");
        }
    }
}
