//! SPF, DKIM and DMARC (`verify`) as the end-of-data step: its verdict becomes an
//! Authentication-Results field, and a DMARC p=reject failure is refused when configured to.

use std::sync::Arc;

use super::{Check, Facts, Phase, Score, Step, Verdict};
use crate::smtp::proto::Reply;
use crate::smtp::verify::{Envelope, InboundAuth};

pub struct AuthStep {
    checker: Arc<InboundAuth>,
    reject_dmarc_failures: bool,
}

impl AuthStep {
    pub fn new(checker: Arc<InboundAuth>, reject_dmarc_failures: bool) -> Self {
        AuthStep {
            checker,
            reject_dmarc_failures,
        }
    }
}

impl Step for AuthStep {
    fn name(&self) -> &'static str {
        "auth"
    }

    fn check(&self, phase: &Phase, facts: &Facts) -> Option<Check> {
        let Phase::Data(message) = phase else {
            return None;
        };
        let message = message.clone();
        let checker = self.checker.clone();
        let reject = self.reject_dmarc_failures;
        let facts = facts.clone();
        Some(Box::pin(async move {
            let envelope = Envelope {
                ip: facts.ip,
                helo: facts.helo.as_deref().unwrap_or("unknown"),
                mail_from: facts.mail_from.as_deref().unwrap_or(""),
            };
            let verdict = match checker.check(&envelope, &message.spool).await {
                Ok(verdict) => verdict,
                Err(error) => {
                    tracing::error!(%error, "SPF/DKIM/DMARC check failed; not recorded");
                    return Verdict::Accept;
                }
            };
            if verdict.dmarc_reject && reject {
                return Verdict::Reject(Reply::new(
                    550,
                    "5.7.1",
                    "Rejected by the sender domain's DMARC policy",
                ));
            }
            Verdict::Score(Score {
                points: 0.0,
                reason: String::new(),
                header: Some(verdict.header),
            })
        }))
    }
}
