//! The captive portal's web side: the operating systems' connectivity probes, a redirect for
//! any other site, and the RFC 8908 captive-portal API.
//!
//! In setup mode the captive DNS responder sends every name to this box, so a phone that
//! joined the hotspot fetches its probe URL from us. Each probe then gets a redirect to the
//! wizard instead of the answer its system expects, which is what makes Android, iOS/macOS,
//! Windows and Firefox open the setup page by themselves; any other site (a foreign `Host`)
//! is redirected the same way. Outside setup mode the probes get the expected answers, so a
//! device that still asks this box (a cached DNS answer) sees the internet as working.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Connection, Web};
use crate::config::Config;

/// The captive-portal API (RFC 8908), at the URL the hotspot's DHCP option 114 names.
pub const CAPTIVE_API_PATH: &str = "/captive-portal/api";

/// A probe: its path, and the answer that means "the internet works".
struct Probe {
    path: &'static str,
    status: StatusCode,
    content_type: &'static str,
    body: &'static str,
}

const APPLE_SUCCESS: &str = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>";

const PROBES: [Probe; 8] = [
    // Android and ChromeOS (connectivitycheck.gstatic.com, clients3.google.com).
    Probe {
        path: "/generate_204",
        status: StatusCode::NO_CONTENT,
        content_type: "text/plain",
        body: "",
    },
    Probe {
        path: "/gen_204",
        status: StatusCode::NO_CONTENT,
        content_type: "text/plain",
        body: "",
    },
    // iOS and macOS (captive.apple.com).
    Probe {
        path: "/hotspot-detect.html",
        status: StatusCode::OK,
        content_type: "text/html",
        body: APPLE_SUCCESS,
    },
    Probe {
        path: "/library/test/success.html",
        status: StatusCode::OK,
        content_type: "text/html",
        body: APPLE_SUCCESS,
    },
    // Windows (www.msftconnecttest.com, www.msftncsi.com).
    Probe {
        path: "/connecttest.txt",
        status: StatusCode::OK,
        content_type: "text/plain",
        body: "Microsoft Connect Test",
    },
    Probe {
        path: "/ncsi.txt",
        status: StatusCode::OK,
        content_type: "text/plain",
        body: "Microsoft NCSI",
    },
    // Firefox (detectportal.firefox.com).
    Probe {
        path: "/canonical.html",
        status: StatusCode::OK,
        content_type: "text/html",
        body: "<meta http-equiv=\"refresh\" content=\"0;url=https://support.mozilla.org/kb/captive-portal\"/>",
    },
    Probe {
        path: "/success.txt",
        status: StatusCode::OK,
        content_type: "text/plain",
        body: "success\n",
    },
];

pub(super) fn routes() -> Router<Arc<Web>> {
    let mut router = Router::new().route(CAPTIVE_API_PATH, get(captive_api));
    for (index, probe) in PROBES.iter().enumerate() {
        router = router.route(
            probe.path,
            get(move |state: State<Arc<Web>>, request: Request| answer(index, state, request)),
        );
    }
    router
}

async fn answer(index: usize, State(web): State<Arc<Web>>, request: Request) -> Response {
    let probe = &PROBES[index];
    if web.in_setup_mode() {
        return found(&wizard_url(&request));
    }
    (
        probe.status,
        [(header::CONTENT_TYPE, probe.content_type)],
        probe.body,
    )
        .into_response()
}

/// RFC 8908 §5: whether this network holds the client captive, and where to go.
async fn captive_api(State(web): State<Arc<Web>>, request: Request) -> Response {
    let body = if web.in_setup_mode() {
        let config = web.config();
        let url = portal_url(&config, connection(&request).map(|c| c.local));
        serde_json::json!({ "captive": true, "user-portal-url": url })
    } else {
        serde_json::json!({ "captive": false })
    };
    (
        [
            (header::CONTENT_TYPE, "application/captive+json"),
            // RFC 8908 §5: the answer is per client and changes when setup ends.
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// RFC 8908 §5 asks for an https user-portal-url: the HTTPS listener's port at the address
/// the client reached; plain http only when HTTPS is turned off.
fn portal_url(config: &Config, local: Option<SocketAddr>) -> String {
    let ip = local
        .map(|l| l.ip().to_string())
        .unwrap_or_else(|| config.hostname.clone());
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip
    };
    if let Some(tls) = config.listen.web_tls.first() {
        return match tls.port() {
            443 => format!("https://{host}/setup"),
            port => format!("https://{host}:{port}/setup"),
        };
    }
    match config.listen.web.first().map(SocketAddr::port) {
        Some(80) | None => format!("http://{host}/setup"),
        Some(port) => format!("http://{host}:{port}/setup"),
    }
}

/// 302 Found: the redirect every captive-portal detector recognises (some treat 303 or 307
/// as "online" or as an error).
fn found(location: &str) -> Response {
    match axum::http::HeaderValue::from_str(location) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

fn connection(request: &Request) -> Option<Connection> {
    request.extensions().get::<Connection>().copied()
}

/// The wizard at the address and port the request came in on.
fn wizard_url(request: &Request) -> String {
    let Some(connection) = connection(request) else {
        return "/setup".into();
    };
    let scheme = if connection.tls { "https" } else { "http" };
    let default_port = if connection.tls { 443 } else { 80 };
    let ip = connection.local.ip();
    let host = if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    match connection.local.port() {
        port if port == default_port => format!("{scheme}://{host}/setup"),
        port => format!("{scheme}://{host}:{port}/setup"),
    }
}

/// Whether `Host` names this box: an address, `localhost`, the host name or its `.local`
/// form (mDNS). Anything else is a site the captive DNS sent here.
fn is_own_host(headers: &HeaderMap, config: &Config) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        // HTTP/1.0 without Host: nothing to redirect from.
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let short = config.hostname.split('.').next().unwrap_or_default();
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name == "localhost"
        || name == config.hostname.to_ascii_lowercase()
        || name == format!("{short}.local")
}

/// In setup mode, a request for another site goes to the wizard (the whole captive trick,
/// with the wildcard DNS); the probes' own routes answer them whatever their `Host`.
pub(super) async fn captive_redirect(
    State(web): State<Arc<Web>>,
    request: Request,
    next: Next,
) -> Response {
    let probe = PROBES.iter().any(|p| p.path == request.uri().path())
        || request.uri().path() == CAPTIVE_API_PATH;
    if !probe && web.in_setup_mode() && !is_own_host(request.headers(), &web.config()) {
        return found(&wizard_url(&request));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn host(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn own_names_and_addresses_are_not_redirected() {
        let mut config = Config::development();
        config.hostname = "mail.smith.example".into();
        for own in [
            "192.168.4.1",
            "127.0.0.1:8080",
            "[fd00::1]:8080",
            "localhost:8080",
            "MAIL.smith.example",
            "mail.local",
        ] {
            assert!(is_own_host(&host(own), &config), "{own}");
        }
        for foreign in [
            "connectivitycheck.gstatic.com",
            "captive.apple.com",
            "www.msftconnecttest.com",
            "example.com:80",
            "[not-an-address]",
        ] {
            assert!(!is_own_host(&host(foreign), &config), "{foreign}");
        }
    }

    #[test]
    fn the_portal_url_is_https_where_https_listens() {
        let mut config = Config::development();
        let local: SocketAddr = "10.42.0.1:80".parse().unwrap();
        assert_eq!(
            portal_url(&config, Some(local)),
            "https://10.42.0.1:8443/setup"
        );
        config.listen.web_tls = vec!["0.0.0.0:443".parse().unwrap()];
        assert_eq!(portal_url(&config, Some(local)), "https://10.42.0.1/setup");
        config.listen.web_tls.clear();
        assert_eq!(
            portal_url(&config, Some(local)),
            "http://127.0.0.1:8080/setup".replace("127.0.0.1", "10.42.0.1")
        );
    }
}
