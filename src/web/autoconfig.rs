//! Client autoconfiguration: mail programs find their settings from the address alone.
//!
//! - Thunderbird: `/.well-known/autoconfig/mail/config-v1.1.xml` and `/mail/config-v1.1.xml`
//!   (the Mozilla ISPDB format, asked at `autoconfig.<domain>` and at the domain itself);
//! - Outlook: `POST /autodiscover/autodiscover.xml` (the "POX" Autodiscover protocol, asked at
//!   `autodiscover.<domain>`);
//! - Apple: `/me/letterbox.mobileconfig`, a configuration profile for the logged-in person
//!   with the IMAP and SMTP accounts and, while the box's certificate is its own self-signed
//!   one, that certificate as a trust payload so that iPhones and Macs stop warning.
//!
//! The servers and ports are the running config's: the host name, the first IMAPS,
//! submissions and submission listeners. Only the TLS ports are offered.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::{Connection, MailPorts, Web};
use crate::config::Config;

pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(thunderbird),
        )
        .route("/mail/config-v1.1.xml", get(thunderbird))
        .route("/autodiscover/autodiscover.xml", post(outlook))
        .route("/Autodiscover/Autodiscover.xml", post(outlook))
        .route("/me/letterbox.mobileconfig", get(apple))
}

/// Text for XML character data and attribute values.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The local domain of `address`, or the box's first domain.
fn domain_for(config: &Config, address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .filter(|d| config.is_local_domain(d))
        .or_else(|| config.domains.first().cloned())
        .unwrap_or_default()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AutoconfigQuery {
    emailaddress: String,
}

/// The Mozilla autoconfig document (clientConfig version 1.1).
pub(super) fn thunderbird_xml(config: &Config, ports: &MailPorts, address: &str) -> String {
    let domain = xml(&domain_for(config, address));
    let host = xml(&config.hostname);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <clientConfig version=\"1.1\">\n\
         <emailProvider id=\"{domain}\">\n\
         <domain>{domain}</domain>\n\
         <displayName>Letterbox ({host})</displayName>\n\
         <displayShortName>Letterbox</displayShortName>\n"
    );
    if let Some(port) = ports.imaps {
        out.push_str(&format!(
            "<incomingServer type=\"imap\">\n<hostname>{host}</hostname>\n<port>{port}</port>\n\
             <socketType>SSL</socketType>\n<authentication>password-cleartext</authentication>\n\
             <username>%EMAILADDRESS%</username>\n</incomingServer>\n"
        ));
    }
    for (port, socket) in [(ports.submissions, "SSL"), (ports.submission, "STARTTLS")] {
        if let Some(port) = port {
            out.push_str(&format!(
                "<outgoingServer type=\"smtp\">\n<hostname>{host}</hostname>\n<port>{port}</port>\n\
                 <socketType>{socket}</socketType>\n<authentication>password-cleartext</authentication>\n\
                 <username>%EMAILADDRESS%</username>\n</outgoingServer>\n"
            ));
        }
    }
    out.push_str("</emailProvider>\n</clientConfig>\n");
    out
}

async fn thunderbird(
    State(web): State<Arc<Web>>,
    Query(query): Query<AutoconfigQuery>,
) -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        thunderbird_xml(&web.config(), &web.mail_ports(), &query.emailaddress),
    )
        .into_response()
}

/// The address an Autodiscover request asks about (`<EMailAddress>`), if any.
fn requested_address(body: &str) -> Option<String> {
    let start = body.find("<EMailAddress>")? + "<EMailAddress>".len();
    let end = body[start..].find("</EMailAddress>")? + start;
    let address = body[start..end].trim();
    (!address.is_empty() && address.len() <= 320 && address.contains('@'))
        .then(|| address.to_string())
}

/// The Autodiscover response (responseschema 2006a) with IMAP and SMTP settings.
pub(super) fn outlook_xml(config: &Config, ports: &MailPorts, address: &str) -> String {
    let host = xml(&config.hostname);
    let login = xml(address);
    let mut protocols = String::new();
    if let Some(port) = ports.imaps {
        protocols.push_str(&format!(
            "<Protocol><Type>IMAP</Type><Server>{host}</Server><Port>{port}</Port>\
             <DomainRequired>off</DomainRequired><LoginName>{login}</LoginName><SPA>off</SPA>\
             <SSL>on</SSL><AuthRequired>on</AuthRequired></Protocol>\n"
        ));
    }
    let smtp = match (ports.submissions, ports.submission) {
        (Some(port), _) => Some((port, "<SSL>on</SSL>")),
        (None, Some(port)) => Some((port, "<Encryption>TLS</Encryption>")),
        (None, None) => None,
    };
    if let Some((port, security)) = smtp {
        protocols.push_str(&format!(
            "<Protocol><Type>SMTP</Type><Server>{host}</Server><Port>{port}</Port>\
             <DomainRequired>off</DomainRequired><LoginName>{login}</LoginName><SPA>off</SPA>\
             {security}<AuthRequired>on</AuthRequired><UsePOPAuth>on</UsePOPAuth>\
             <SMTPLast>off</SMTPLast></Protocol>\n"
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n\
         <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n\
         <Account>\n<AccountType>email</AccountType>\n<Action>settings</Action>\n{protocols}</Account>\n\
         </Response>\n</Autodiscover>\n"
    )
}

async fn outlook(State(web): State<Arc<Web>>, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body);
    let Some(address) = requested_address(&body) else {
        return (StatusCode::BAD_REQUEST, "no EMailAddress in the request").into_response();
    };
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        outlook_xml(&web.config(), &web.mail_ports(), &address),
    )
        .into_response()
}

fn uuid() -> String {
    let bytes = crate::secret::random_bytes::<16>().unwrap_or([0x42; 16]);
    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "{}-{}-4{}-A{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

fn plist_string(key: &str, value: &str) -> String {
    format!("<key>{}</key><string>{}</string>\n", xml(key), xml(value))
}

fn plist_integer(key: &str, value: u16) -> String {
    format!("<key>{}</key><integer>{value}</integer>\n", xml(key))
}

fn plist_bool(key: &str, value: bool) -> String {
    format!("<key>{}</key><{value}/>\n", xml(key))
}

/// The configuration profile for `address`; `self_signed` is the box's own certificate (DER)
/// when it uses one.
pub(super) fn apple_profile(
    config: &Config,
    ports: &MailPorts,
    address: &str,
    self_signed: Option<&[u8]>,
) -> String {
    let host = &config.hostname;
    let id = format!("local.letterbox.{host}.{address}");
    let mut mail = String::from("<dict>\n");
    mail.push_str(&plist_string(
        "EmailAccountDescription",
        &format!("Letterbox ({host})"),
    ));
    mail.push_str(&plist_string("EmailAccountName", address));
    mail.push_str(&plist_string("EmailAccountType", "EmailTypeIMAP"));
    mail.push_str(&plist_string("EmailAddress", address));
    mail.push_str(&plist_string(
        "IncomingMailServerAuthentication",
        "EmailAuthPassword",
    ));
    mail.push_str(&plist_string("IncomingMailServerHostName", host));
    mail.push_str(&plist_integer(
        "IncomingMailServerPortNumber",
        ports.imaps.unwrap_or(993),
    ));
    mail.push_str(&plist_bool("IncomingMailServerUseSSL", true));
    mail.push_str(&plist_string("IncomingMailServerUsername", address));
    mail.push_str(&plist_string(
        "OutgoingMailServerAuthentication",
        "EmailAuthPassword",
    ));
    mail.push_str(&plist_string("OutgoingMailServerHostName", host));
    let (port, implicit) = match (ports.submissions, ports.submission) {
        (Some(port), _) => (port, true),
        (None, Some(port)) => (port, false),
        (None, None) => (465, true),
    };
    mail.push_str(&plist_integer("OutgoingMailServerPortNumber", port));
    // Apple's "UseSSL" means TLS, implicit or by STARTTLS, whichever the port speaks.
    mail.push_str(&plist_bool(
        "OutgoingMailServerUseSSL",
        implicit || port != 25,
    ));
    mail.push_str(&plist_string("OutgoingMailServerUsername", address));
    mail.push_str(&plist_bool("OutgoingPasswordSameAsIncomingPassword", true));
    mail.push_str(&plist_string(
        "PayloadDisplayName",
        &format!("Mail for {address}"),
    ));
    mail.push_str(&plist_string("PayloadIdentifier", &format!("{id}.mail")));
    mail.push_str(&plist_string("PayloadType", "com.apple.mail.managed"));
    mail.push_str(&plist_string("PayloadUUID", &uuid()));
    mail.push_str(&plist_integer("PayloadVersion", 1));
    mail.push_str("</dict>\n");
    let mut payloads = mail;
    if let Some(der) = self_signed {
        payloads.push_str("<dict>\n");
        payloads.push_str(&plist_string(
            "PayloadCertificateFileName",
            &format!("{host}.cer"),
        ));
        payloads.push_str(&format!(
            "<key>PayloadContent</key><data>{}</data>\n",
            STANDARD.encode(der)
        ));
        payloads.push_str(&plist_string(
            "PayloadDisplayName",
            &format!("The certificate of {host}"),
        ));
        payloads.push_str(&plist_string(
            "PayloadIdentifier",
            &format!("{id}.certificate"),
        ));
        payloads.push_str(&plist_string("PayloadType", "com.apple.security.root"));
        payloads.push_str(&plist_string("PayloadUUID", &uuid()));
        payloads.push_str(&plist_integer("PayloadVersion", 1));
        payloads.push_str("</dict>\n");
    }
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n<key>PayloadContent</key>\n<array>\n",
    );
    out.push_str(&payloads);
    out.push_str("</array>\n");
    out.push_str(&plist_string(
        "PayloadDescription",
        &format!("Sets up Mail for {address} on {host}."),
    ));
    out.push_str(&plist_string(
        "PayloadDisplayName",
        &format!("Letterbox: {address}"),
    ));
    out.push_str(&plist_string("PayloadIdentifier", &id));
    out.push_str(&plist_bool("PayloadRemovalDisallowed", false));
    out.push_str(&plist_string("PayloadType", "Configuration"));
    out.push_str(&plist_string("PayloadUUID", &uuid()));
    out.push_str(&plist_integer("PayloadVersion", 1));
    out.push_str("</dict>\n</plist>\n");
    out
}

/// The box's own certificate (DER), if it uses the self-signed one.
fn self_signed_der(config: &Config) -> Option<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    if config.tls.is_some() {
        return None;
    }
    let (cert, _) = crate::tls::cert_paths(config);
    CertificateDer::pem_file_iter(cert)
        .ok()?
        .next()?
        .ok()
        .map(|der| der.to_vec())
}

async fn apple(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let signed = match web
        .person(&headers, &connection, "/me/letterbox.mobileconfig")
        .await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let config = web.config();
    let profile = apple_profile(
        &config,
        &web.mail_ports(),
        &signed.account,
        self_signed_der(&config).as_deref(),
    );
    (
        [
            (header::CONTENT_TYPE, "application/x-apple-aspen-config"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"letterbox.mobileconfig\"",
            ),
        ],
        profile,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_autodiscover_request_names_the_address() {
        let body = "<?xml version=\"1.0\"?><Autodiscover xmlns=\"x\"><Request>\
                    <EMailAddress> anna@smith.example </EMailAddress></Request></Autodiscover>";
        assert_eq!(
            requested_address(body).as_deref(),
            Some("anna@smith.example")
        );
        assert_eq!(requested_address("<EMailAddress></EMailAddress>"), None);
        assert_eq!(requested_address("nothing"), None);
    }

    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(xml("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;");
        let mut config = Config::development();
        config.hostname = "mail.<x>.example".into();
        let ports = MailPorts::of(&config, &crate::status::Status::default());
        let doc = outlook_xml(&config, &ports, "a&b@home.test");
        assert!(doc.contains("<LoginName>a&amp;b@home.test</LoginName>"));
        assert!(doc.contains("<Server>mail.&lt;x&gt;.example</Server>"));
    }

    #[test]
    fn uuids_look_like_uuids() {
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(uuid(), id);
    }
}
