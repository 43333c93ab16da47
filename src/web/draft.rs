//! The setup wizard's answers before "Finish", and the checks each step makes of what was
//! typed. Pure: no I/O, so every rule has a table test; the handlers in `wizard` call these
//! and show the message beside the field it is about.

use crate::config::{RelayTls, is_hostname};
use crate::secret::Secret;
use crate::settings::RelaySettings;

/// The wizard's steps, in order; `Wifi` only on a box with a Wi-Fi radio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Names,
    Accounts,
    Outgoing,
    Wifi,
    Tls,
    Summary,
}

impl Step {
    pub fn all(has_wifi: bool) -> Vec<Step> {
        let mut steps = vec![Step::Names, Step::Accounts, Step::Outgoing];
        if has_wifi {
            steps.push(Step::Wifi);
        }
        steps.extend([Step::Tls, Step::Summary]);
        steps
    }

    pub fn path(self) -> &'static str {
        match self {
            Step::Names => "/setup/names",
            Step::Accounts => "/setup/accounts",
            Step::Outgoing => "/setup/outgoing",
            Step::Wifi => "/setup/wifi",
            Step::Tls => "/setup/tls",
            Step::Summary => "/setup/summary",
        }
    }

    /// The short name in the progress list.
    pub fn name(self) -> &'static str {
        match self {
            Step::Names => "Names",
            Step::Accounts => "People",
            Step::Outgoing => "Outgoing mail",
            Step::Wifi => "Wi-Fi",
            Step::Tls => "Certificate",
            Step::Summary => "Finish",
        }
    }

    /// The page's heading.
    pub fn title(self) -> &'static str {
        match self {
            Step::Names => "Your mail domain",
            Step::Accounts => "The people who get mail here",
            Step::Outgoing => "Sending mail out",
            Step::Wifi => "Wi-Fi",
            Step::Tls => "Certificate",
            Step::Summary => "Check and finish",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub domain: String,
    pub hostname: String,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    /// The part before the @; the domain is the draft's, whatever it is at the end.
    pub local: String,
    pub password: Secret<String>,
}

#[derive(Debug, Clone)]
pub enum Outgoing {
    Direct,
    Relay {
        /// The provider picked from the list, if one was.
        provider: Option<&'static str>,
        relay: RelaySettings,
    },
}

#[derive(Debug, Clone)]
pub struct WifiChoice {
    pub ssid: String,
    pub passphrase: Secret<String>,
    /// The regulatory domain (ISO 3166-1 alpha-2): some channels are used only with it.
    pub country: String,
}

#[derive(Debug, Clone)]
pub enum TlsChoice {
    SelfSigned,
    Upload {
        cert: Vec<u8>,
        key: Secret<Vec<u8>>,
        /// What the certificate is for and until when, for the summary.
        summary: String,
    },
}

/// Everything answered so far.
#[derive(Debug, Default)]
pub struct Draft {
    pub names: Option<Names>,
    pub accounts: Vec<NewAccount>,
    /// The people step is answered ("Next"): on a box with people, none need adding.
    pub people_done: bool,
    pub outgoing: Option<Outgoing>,
    pub wifi: Option<WifiChoice>,
    pub tls: Option<TlsChoice>,
}

impl Draft {
    /// The first step not answered yet (`Summary` when all are).
    pub fn next_step(&self, has_wifi: bool) -> Step {
        if self.names.is_none() {
            Step::Names
        } else if self.accounts.is_empty() && !self.people_done {
            Step::Accounts
        } else if self.outgoing.is_none() {
            Step::Outgoing
        } else if has_wifi && self.wifi.is_none() {
            Step::Wifi
        } else if self.tls.is_none() {
            Step::Tls
        } else {
            Step::Summary
        }
    }

    pub fn domain(&self) -> &str {
        self.names.as_ref().map_or("", |n| n.domain.as_str())
    }

    pub fn addresses(&self) -> Vec<String> {
        self.accounts
            .iter()
            .map(|a| format!("{}@{}", a.local, self.domain()))
            .collect()
    }
}

/// A domain a household can own: a valid DNS name with at least two labels, not an address.
pub fn check_domain(typed: &str) -> Result<String, String> {
    let domain = typed.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return Err("Type the domain, for example smith.example.".into());
    }
    if domain.parse::<std::net::IpAddr>().is_ok() {
        return Err("That is an address; type a domain name such as smith.example.".into());
    }
    if domain.contains('@') {
        return Err("Type only the part after the @, for example smith.example.".into());
    }
    if !is_hostname(&domain) || !domain.contains('.') {
        return Err(format!(
            "\"{domain}\" is not a domain name: use letters, digits and hyphens, in parts \
             separated by dots, such as smith.example."
        ));
    }
    Ok(domain)
}

/// The domain and the host name (empty: `mail.` + domain), each with its own message.
pub fn check_names(
    domain: &str,
    hostname: &str,
) -> Result<Names, (Option<String>, Option<String>)> {
    let domain = check_domain(domain);
    let hostname = hostname.trim().trim_end_matches('.').to_ascii_lowercase();
    let hostname = match (&domain, hostname.is_empty()) {
        (Ok(domain), true) => Ok(format!("mail.{domain}")),
        (Err(_), true) => Ok(String::new()),
        (_, false) if hostname.parse::<std::net::IpAddr>().is_ok() => {
            Err("Use a name, not an address: mail programs check the name.".to_string())
        }
        (_, false) if !is_hostname(&hostname) || !hostname.contains('.') => Err(format!(
            "\"{hostname}\" is not a full host name such as mail.smith.example."
        )),
        (_, false) => Ok(hostname),
    };
    match (domain, hostname) {
        (Ok(domain), Ok(hostname)) => Ok(Names { domain, hostname }),
        (domain, hostname) => Err((domain.err(), hostname.err())),
    }
}

/// The part before the @ of a new address: what every mail system accepts unquoted
/// (RFC 5321 dot-atom, restricted to letters, digits, `.`, `_` and `-`), not taken yet.
pub fn check_local_part(typed: &str, taken: &[String]) -> Result<String, String> {
    let local = typed.trim().to_ascii_lowercase();
    if local.is_empty() {
        return Err("Type the part before the @, for example anna.".into());
    }
    if local.contains('@') {
        return Err("Type only the part before the @; the domain is added.".into());
    }
    if local.len() > 64 {
        return Err("At most 64 characters before the @ (RFC 5321).".into());
    }
    if !local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("Use only letters a-z, digits, dots, hyphens and underscores.".into());
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("A dot cannot come first, last or twice in a row.".into());
    }
    if taken.iter().any(|t| t == &local) {
        return Err(format!("{local} is already on the list."));
    }
    Ok(local)
}

/// The smarthosts the README lists; picking one fills in its server, port and TLS.
pub struct Provider {
    pub name: &'static str,
    pub host: &'static str,
    pub port: u16,
    pub tls: RelayTls,
}

pub const PROVIDERS: [Provider; 6] = [
    Provider {
        name: "Gmail / Google Workspace",
        host: "smtp.gmail.com",
        port: 587,
        tls: RelayTls::Starttls,
    },
    Provider {
        name: "Outlook.com / Microsoft 365",
        host: "smtp.office365.com",
        port: 587,
        tls: RelayTls::Starttls,
    },
    Provider {
        name: "Fastmail",
        host: "smtp.fastmail.com",
        port: 465,
        tls: RelayTls::Tls,
    },
    Provider {
        name: "iCloud Mail",
        host: "smtp.mail.me.com",
        port: 587,
        tls: RelayTls::Starttls,
    },
    Provider {
        name: "Mailgun",
        host: "smtp.mailgun.org",
        port: 587,
        tls: RelayTls::Starttls,
    },
    Provider {
        name: "Amazon SES (eu-west-1)",
        host: "email-smtp.eu-west-1.amazonaws.com",
        port: 587,
        tls: RelayTls::Starttls,
    },
];

/// The smarthost form as typed.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct RelayForm {
    pub provider: String,
    pub host: String,
    pub port: String,
    pub tls: String,
    pub username: String,
    pub password: String,
}

/// A smarthost from the form; a picked provider's server, port and TLS win over typed ones.
/// `kept` is the password from before, used when the field is left empty for the same user.
pub fn check_relay(
    form: &RelayForm,
    kept: Option<&RelaySettings>,
) -> Result<(Option<&'static str>, RelaySettings), String> {
    let provider = PROVIDERS.iter().find(|p| p.name == form.provider);
    let (host, port, tls) = match provider {
        Some(p) => (p.host.to_string(), p.port, p.tls),
        None => {
            let host = form.host.trim().trim_end_matches('.').to_ascii_lowercase();
            if host.is_empty() {
                return Err("Pick a provider or type the smarthost's server name.".into());
            }
            if !is_hostname(&host) && host.parse::<std::net::IpAddr>().is_err() {
                return Err(format!("\"{host}\" is not a server name."));
            }
            let port = match form.port.trim() {
                "" => 587,
                typed => typed
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("\"{typed}\" is not a port number (1-65535)."))?,
            };
            let tls = match form.tls.as_str() {
                "tls" => RelayTls::Tls,
                // Mail to a smarthost carries the password: never without TLS from the wizard.
                _ => RelayTls::Starttls,
            };
            (host, port, tls)
        }
    };
    let username = form.username.trim();
    let password = if !form.password.is_empty() {
        Some(Secret::new(form.password.clone()))
    } else {
        kept.filter(|k| k.host == host && k.username.as_deref() == Some(username))
            .and_then(|k| k.password.clone())
    };
    if username.is_empty() != password.is_none() {
        return Err(if username.is_empty() {
            "Type the user name that goes with the password.".into()
        } else {
            "Type the password for this user name.".into()
        });
    }
    Ok((
        provider.map(|p| p.name),
        RelaySettings {
            host,
            port,
            tls,
            username: (!username.is_empty()).then(|| username.to_string()),
            password,
        },
    ))
}

/// A network to join: its name (1-32 bytes, IEEE 802.11) and a WPA2 passphrase (8-63).
pub fn check_wifi(ssid: &str, passphrase: &str, country: &str) -> Result<WifiChoice, String> {
    let country = crate::country::check(country.trim())?;
    if ssid.is_empty() {
        return Err("Pick a network or type its name.".into());
    }
    if ssid.len() > 32 {
        return Err("A Wi-Fi network's name has at most 32 bytes.".into());
    }
    let length = passphrase.chars().count();
    if !(8..=63).contains(&length) {
        return Err(format!(
            "A Wi-Fi password has 8 to 63 characters (this one has {length})."
        ));
    }
    Ok(WifiChoice {
        ssid: ssid.to_string(),
        passphrase: Secret::new(passphrase.to_string()),
        country,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_people_step_is_answered_by_a_person_or_by_next_on_a_box_with_people() {
        let mut draft = Draft {
            names: Some(Names {
                domain: "smith.test".into(),
                hostname: "mail.smith.test".into(),
            }),
            ..Draft::default()
        };
        assert_eq!(draft.next_step(false), Step::Accounts);
        draft.people_done = true;
        assert_eq!(draft.next_step(false), Step::Outgoing);
    }

    #[test]
    fn domains() {
        assert_eq!(check_domain(" Smith.Example. "), Ok("smith.example".into()));
        for bad in [
            "",
            "192.168.1.1",
            "anna@smith.example",
            "smith",
            "smi th.example",
            "-a.example",
        ] {
            assert!(check_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_host_name_defaults_to_mail_dot_domain() {
        let names = check_names("smith.example", "").expect("valid");
        assert_eq!(names.hostname, "mail.smith.example");
        let names = check_names("smith.example", "Box.Smith.Example").expect("valid");
        assert_eq!(names.hostname, "box.smith.example");
        let (domain, hostname) = check_names("smith", "10.0.0.1").expect_err("invalid");
        assert!(domain.is_some() && hostname.is_some());
        let (domain, hostname) = check_names("smith", "").expect_err("invalid");
        assert!(domain.is_some() && hostname.is_none());
    }

    #[test]
    fn local_parts() {
        let taken = vec!["anna".to_string()];
        assert_eq!(
            check_local_part(" Ben.Smith ", &taken),
            Ok("ben.smith".into())
        );
        for bad in [
            "",
            "anna",
            "a@b",
            ".ben",
            "ben.",
            "be..n",
            "bén",
            "b n",
            &"x".repeat(65),
        ] {
            assert!(check_local_part(bad, &taken).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_provider_fills_in_its_server_and_a_password_needs_a_user() {
        let form = RelayForm {
            provider: "Fastmail".into(),
            host: "ignored.example".into(),
            username: "anna@fastmail.example".into(),
            password: "app password".into(),
            ..RelayForm::default()
        };
        let (provider, relay) = check_relay(&form, None).expect("valid");
        assert_eq!(provider, Some("Fastmail"));
        assert_eq!(
            (relay.host.as_str(), relay.port, relay.tls),
            ("smtp.fastmail.com", 465, RelayTls::Tls)
        );
        let no_user = RelayForm {
            host: "smtp.isp.example".into(),
            password: "x".into(),
            ..RelayForm::default()
        };
        assert!(check_relay(&no_user, None).is_err());
        let typed = RelayForm {
            host: "smtp.isp.example".into(),
            port: "2525".into(),
            tls: "none".into(),
            ..RelayForm::default()
        };
        let (_, relay) = check_relay(&typed, None).expect("valid");
        assert_eq!((relay.port, relay.tls), (2525, RelayTls::Starttls));
        assert!(
            check_relay(
                &RelayForm {
                    port: "0".into(),
                    ..typed.clone()
                },
                None
            )
            .is_err()
        );
        assert!(check_relay(&RelayForm::default(), None).is_err());
    }

    #[test]
    fn an_empty_password_keeps_the_one_from_before_for_the_same_user() {
        let before = RelaySettings {
            host: "smtp.isp.example".into(),
            port: 587,
            tls: RelayTls::Starttls,
            username: Some("anna".into()),
            password: Some(Secret::new("secret".into())),
        };
        let again = RelayForm {
            host: "smtp.isp.example".into(),
            username: "anna".into(),
            ..RelayForm::default()
        };
        let (_, relay) = check_relay(&again, Some(&before)).expect("valid");
        assert_eq!(relay.password, before.password);
        let other_user = RelayForm {
            username: "ben".into(),
            ..again
        };
        assert!(check_relay(&other_user, Some(&before)).is_err());
    }

    #[test]
    fn wifi_passphrases_are_wpa2_sized() {
        assert_eq!(
            check_wifi("Home", "12345678", "de").map(|w| w.country),
            Ok("DE".into())
        );
        assert!(check_wifi("Home", "1234567", "DE").is_err());
        assert!(check_wifi("Home", &"x".repeat(64), "DE").is_err());
        assert!(check_wifi("", "12345678", "DE").is_err());
        assert!(check_wifi(&"n".repeat(33), "12345678", "DE").is_err());
        assert!(check_wifi("Home", "12345678", "XX").is_err());
    }

    #[test]
    fn the_next_step_is_the_first_unanswered() {
        let mut draft = Draft::default();
        assert_eq!(draft.next_step(true), Step::Names);
        draft.names = Some(Names {
            domain: "smith.example".into(),
            hostname: "mail.smith.example".into(),
        });
        draft.accounts.push(NewAccount {
            local: "anna".into(),
            password: Secret::new("x".into()),
        });
        draft.outgoing = Some(Outgoing::Direct);
        assert_eq!(draft.next_step(true), Step::Wifi);
        assert_eq!(draft.next_step(false), Step::Tls);
        draft.tls = Some(TlsChoice::SelfSigned);
        assert_eq!(draft.next_step(false), Step::Summary);
        assert_eq!(draft.addresses(), vec!["anna@smith.example".to_string()]);
        assert_eq!(Step::all(false).len(), 5);
    }
}
