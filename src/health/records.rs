//! Do the published MX, SPF, DKIM and DMARC records say what `letterbox dns-records` says
//! (`outbound::records::expected`)? Each check covers every local domain; the first domain
//! with the worst verdict is the one named.

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;

use super::{Check, Context, Finding, Verdict};
use crate::outbound::records::{DomainRecords, expected};

/// What a lookup found: the records, or why nothing is known.
type Lookup = Result<Vec<String>, String>;

pub(super) async fn check(context: &Context<'_>) -> Vec<Finding> {
    let checks = [Check::MxRecord, Check::Spf, Check::Dkim, Check::Dmarc];
    let config = context.config;
    let resolver = match &context.resolver {
        Ok(resolver) => *resolver,
        Err(error) => {
            return checks
                .iter()
                .map(|check| no_resolver(*check, error))
                .collect();
        }
    };
    let dkim = if config.outbound.dkim {
        match crate::outbound::dkim::Dkim::load(config) {
            Ok(Some(dkim)) => Some(dkim),
            Ok(None) => return missing_key(checks, "The DKIM key has not been made yet.".into()),
            Err(error) => {
                return missing_key(checks, format!("The DKIM key cannot be read: {error}."));
            }
        }
    } else {
        None
    };
    let mut per_check: [Vec<Finding>; 4] = Default::default();
    for records in expected(config, dkim.as_ref()) {
        let mx = mx_hosts(resolver, &records.domain).await;
        per_check[0].push(judge_mx(&records, mx));
        let spf = txt(resolver, &records.domain).await;
        per_check[1].push(judge_spf(&records, spf, config.outbound.relay.is_some()));
        per_check[2].push(match &records.dkim {
            Some(_) => judge_dkim(&records, txt(resolver, &records.dkim_name).await),
            None => Finding::new(
                Check::Dkim,
                Verdict::NotNeeded,
                "Outgoing mail is not signed ([outbound] dkim = false).".into(),
                "Nothing to do.",
            ),
        });
        let dmarc = txt(resolver, &records.dmarc_name).await;
        per_check[3].push(judge_dmarc(&records, dmarc));
    }
    per_check
        .into_iter()
        .zip(checks)
        .map(|(findings, check)| worst(check, findings))
        .collect()
}

/// Without the key the records are not what `dns-records` prints, and the DKIM record cannot be
/// judged; the others can.
fn missing_key(checks: [Check; 4], found: String) -> Vec<Finding> {
    checks
        .iter()
        .map(|check| {
            Finding::new(
                *check,
                Verdict::CouldNotCheck,
                found.clone(),
                "The box makes it at start with [outbound] dkim = true; check again once it runs.",
            )
        })
        .collect()
}

fn no_resolver(check: Check, error: &str) -> Finding {
    Finding::new(
        check,
        Verdict::CouldNotCheck,
        format!("No DNS resolver: {error}."),
        "Check [dns] nameservers or /etc/resolv.conf, then check again.",
    )
}

/// The most serious finding (problem, could not check, warning, ok); with no domain at all,
/// nothing to check.
fn worst(check: Check, findings: Vec<Finding>) -> Finding {
    let rank = |verdict: Verdict| match verdict {
        Verdict::Problem => 4,
        Verdict::CouldNotCheck => 3,
        Verdict::Warning => 2,
        Verdict::Ok => 1,
        Verdict::NotNeeded => 0,
    };
    let mut worst: Option<Finding> = None;
    for finding in findings {
        if worst
            .as_ref()
            .is_none_or(|w| rank(finding.verdict) > rank(w.verdict))
        {
            worst = Some(finding);
        }
    }
    worst.unwrap_or_else(|| {
        Finding::new(
            check,
            Verdict::NotNeeded,
            "No local domain.".into(),
            "Nothing to do.",
        )
    })
}

async fn mx_hosts(resolver: &TokioResolver, domain: &str) -> Lookup {
    let fqdn = format!("{}.", domain.trim_end_matches('.'));
    match resolver.mx_lookup(fqdn.as_str()).await {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::MX(mx) => Some(mx.exchange.to_ascii()),
                _ => None,
            })
            .collect()),
        Err(error) if error.is_no_records_found() => Ok(Vec::new()),
        Err(error) => Err(error.to_string()),
    }
}

/// The TXT records at `name`, each one's strings joined (RFC 7208 §3.3).
pub(super) async fn txt(resolver: &TokioResolver, name: &str) -> Lookup {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    match resolver.txt_lookup(fqdn.as_str()).await {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect()),
        Err(error) if error.is_no_records_found() => Ok(Vec::new()),
        Err(error) => Err(error.to_string()),
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Whitespace and case do not change a record's meaning.
fn normalized(value: &str) -> String {
    value
        .split(';')
        .map(|part| part.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(";")
        .replace("; ", ";")
        .to_ascii_lowercase()
}

fn lookup_failed(check: Check, name: &str, error: String) -> Finding {
    Finding::new(
        check,
        Verdict::CouldNotCheck,
        format!("The lookup of {name} failed: {error}."),
        "Check the box's DNS resolver ([dns] nameservers), then check again.",
    )
}

fn judge_mx(records: &DomainRecords, found: Lookup) -> Finding {
    let domain = &records.domain;
    let hosts = match found {
        Ok(hosts) => hosts,
        Err(error) => return lookup_failed(Check::MxRecord, domain, error),
    };
    let advice = format!(
        "Publish an MX record for {domain} naming {} at your DNS provider (letterbox \
         dns-records prints it).",
        records.mx
    );
    if hosts.is_empty() {
        return Finding::new(
            Check::MxRecord,
            Verdict::Problem,
            format!("{domain} has no MX record, so other servers cannot find this box."),
            advice,
        );
    }
    if hosts.iter().any(|h| same_name(h, &records.mx)) {
        return Finding::new(
            Check::MxRecord,
            Verdict::Ok,
            format!("{domain}'s mail goes to {}.", records.mx),
            "Nothing to do.",
        );
    }
    Finding::new(
        Check::MxRecord,
        Verdict::Problem,
        format!(
            "{domain}'s MX names {}, not {}: its mail goes elsewhere.",
            hosts.join(", "),
            records.mx
        ),
        advice,
    )
}

fn judge_spf(records: &DomainRecords, found: Lookup, smarthost: bool) -> Finding {
    let domain = &records.domain;
    let published: Vec<String> = match found {
        Ok(txts) => txts
            .into_iter()
            .filter(|t| t.to_ascii_lowercase().starts_with("v=spf1"))
            .collect(),
        Err(error) => return lookup_failed(Check::Spf, domain, error),
    };
    let advice = format!(
        "Publish the TXT record \"{}\" at {domain} (letterbox dns-records prints it).",
        records.spf
    );
    match published.as_slice() {
        [] => Finding::new(
            Check::Spf,
            Verdict::Problem,
            format!("{domain} has no SPF record, so receivers may treat its mail as forged."),
            advice,
        ),
        [one] if normalized(one) == normalized(&records.spf) => Finding::new(
            Check::Spf,
            Verdict::Ok,
            format!("{domain}: \"{one}\"."),
            "Nothing to do.",
        ),
        [one] => Finding::new(
            Check::Spf,
            Verdict::Warning,
            format!(
                "{domain} publishes \"{one}\", not the suggested \"{}\".",
                records.spf
            ),
            if smarthost {
                "Make sure it allows your smarthost's servers (its documentation names the \
                 include: to add) and this box's MX."
                    .to_string()
            } else {
                advice
            },
        ),
        several => Finding::new(
            Check::Spf,
            Verdict::Problem,
            format!(
                "{domain} has {} SPF records; receivers then ignore them all (RFC 7208 §4.5).",
                several.len()
            ),
            format!("Keep only one SPF record at {domain}: \"{}\".", records.spf),
        ),
    }
}

/// The `p=` tag of a DKIM key record (RFC 6376 §3.6.1), without whitespace.
fn dkim_key(record: &str) -> Option<String> {
    record.split(';').find_map(|tag| {
        let (name, value) = tag.split_once('=')?;
        (name.trim() == "p").then(|| value.split_whitespace().collect())
    })
}

fn judge_dkim(records: &DomainRecords, found: Lookup) -> Finding {
    let name = &records.dkim_name;
    let Some(ours) = records.dkim.as_deref().and_then(dkim_key) else {
        return Finding::new(
            Check::Dkim,
            Verdict::NotNeeded,
            "Outgoing mail is not signed.".into(),
            "Nothing to do.",
        );
    };
    let published = match found {
        Ok(txts) => txts,
        Err(error) => return lookup_failed(Check::Dkim, name, error),
    };
    let advice = format!(
        "Publish this box's key as the TXT record at {name} (letterbox dns-records prints it)."
    );
    let keys: Vec<String> = published.iter().filter_map(|t| dkim_key(t)).collect();
    if keys.is_empty() {
        return Finding::new(
            Check::Dkim,
            Verdict::Problem,
            format!("There is no DKIM key at {name}, so receivers cannot check the signatures."),
            advice,
        );
    }
    if keys.contains(&ours) {
        return Finding::new(
            Check::Dkim,
            Verdict::Ok,
            format!("{name} has this box's key."),
            "Nothing to do.",
        );
    }
    Finding::new(
        Check::Dkim,
        Verdict::Problem,
        format!("The key at {name} is not this box's key, so its signatures fail."),
        advice,
    )
}

fn judge_dmarc(records: &DomainRecords, found: Lookup) -> Finding {
    let name = &records.dmarc_name;
    let published: Vec<String> = match found {
        Ok(txts) => txts
            .into_iter()
            .filter(|t| t.to_ascii_lowercase().starts_with("v=dmarc1"))
            .collect(),
        Err(error) => return lookup_failed(Check::Dmarc, name, error),
    };
    let advice = format!(
        "Publish the TXT record \"{}\" at {name} (letterbox dns-records prints it).",
        records.dmarc
    );
    match published.as_slice() {
        [] => Finding::new(
            Check::Dmarc,
            Verdict::Problem,
            format!("There is no DMARC record at {name}; big providers want one."),
            advice,
        ),
        [one] if normalized(one) == normalized(&records.dmarc) => Finding::new(
            Check::Dmarc,
            Verdict::Ok,
            format!("{name}: \"{one}\"."),
            "Nothing to do.",
        ),
        [one] => Finding::new(
            Check::Dmarc,
            Verdict::Warning,
            format!("{name} publishes \"{one}\", not the suggested one."),
            advice,
        ),
        several => Finding::new(
            Check::Dmarc,
            Verdict::Problem,
            format!(
                "{name} has {} DMARC records; receivers then ignore them all (RFC 7489 §6.6.3).",
                several.len()
            ),
            advice,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> DomainRecords {
        DomainRecords {
            domain: "home.example".into(),
            mx: "mail.home.example".into(),
            spf: "v=spf1 mx -all".into(),
            dkim: Some("v=DKIM1; k=rsa; p=AAAABBBB".into()),
            dkim_name: "letterbox._domainkey.home.example".into(),
            dmarc: "v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:postmaster@home.example"
                .into(),
            dmarc_name: "_dmarc.home.example".into(),
        }
    }

    fn found(values: &[&str]) -> Lookup {
        Ok(values.iter().map(|v| v.to_string()).collect())
    }

    #[test]
    fn each_record_is_judged_both_ways() {
        let r = records();
        let cases: [(Finding, Verdict); 14] = [
            (judge_mx(&r, found(&["mail.home.example."])), Verdict::Ok),
            (judge_mx(&r, found(&["MAIL.Home.Example"])), Verdict::Ok),
            (judge_mx(&r, found(&[])), Verdict::Problem),
            (
                judge_mx(&r, found(&["mx.elsewhere.example."])),
                Verdict::Problem,
            ),
            (
                judge_mx(&r, Err("timed out".into())),
                Verdict::CouldNotCheck,
            ),
            (
                judge_spf(&r, found(&["v=spf1  mx -all", "other"]), false),
                Verdict::Ok,
            ),
            (
                judge_spf(&r, found(&["google-site-verification=x"]), false),
                Verdict::Problem,
            ),
            (
                judge_spf(&r, found(&["v=spf1 a -all"]), false),
                Verdict::Warning,
            ),
            (
                judge_spf(&r, found(&["v=spf1 mx -all", "v=spf1 a -all"]), false),
                Verdict::Problem,
            ),
            (
                judge_dkim(&r, found(&["v=DKIM1; k=rsa; p=AAAA BBBB"])),
                Verdict::Ok,
            ),
            (
                judge_dkim(&r, found(&["v=DKIM1; k=rsa; p=CCCC"])),
                Verdict::Problem,
            ),
            (judge_dkim(&r, found(&[])), Verdict::Problem),
            (
                judge_dmarc(&r, found(&[&r.dmarc.replace("; ", ";")])),
                Verdict::Ok,
            ),
            (
                judge_dmarc(&r, found(&["v=DMARC1; p=none"])),
                Verdict::Warning,
            ),
        ];
        for (finding, verdict) in cases {
            assert_eq!(finding.verdict, verdict, "{finding:?}");
            assert!(!finding.advice.is_empty());
        }
        assert_eq!(judge_dmarc(&r, found(&[])).verdict, Verdict::Problem);
    }

    #[test]
    fn the_worst_domain_is_the_one_named() {
        let ok = Finding::new(Check::Spf, Verdict::Ok, "a".into(), "");
        let bad = Finding::new(Check::Spf, Verdict::Problem, "b".into(), "");
        let unknown = Finding::new(Check::Spf, Verdict::CouldNotCheck, "c".into(), "");
        assert_eq!(worst(Check::Spf, vec![ok.clone(), unknown, bad]).found, "b");
        assert_eq!(worst(Check::Spf, vec![ok]).verdict, Verdict::Ok);
        assert_eq!(worst(Check::Spf, vec![]).verdict, Verdict::NotNeeded);
    }
}
