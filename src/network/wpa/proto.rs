//! wpa_supplicant's control interface without I/O: the request lines Letterbox sends, and
//! what it reads out of the replies and the events (hostap's `wpa_supplicant/ctrl_iface.c`
//! writes both; `src/common/wpa_ctrl.h` names the events).
//!
//! A message that starts with `<` and a digit is an event (`<3>CTRL-EVENT-CONNECTED ...`,
//! the number being its log level); anything else is the reply to the last request. Values
//! that come from people — the network's name, its key — are sent hex-encoded, so no quote,
//! space or backslash in them can change what the line says.

use super::super::WifiNetwork;

/// Why a reply is not what the request asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("wpa_supplicant refused the request (FAIL)")]
    Fail,
    #[error("wpa_supplicant is busy (FAIL-BUSY)")]
    Busy,
    #[error("wpa_supplicant does not know the request (UNKNOWN COMMAND)")]
    UnknownCommand,
    #[error("wpa_supplicant answered {0:?}")]
    Unexpected(String),
}

/// A request line; [`Request::encode`] gives the text sent in one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Receive events on this socket too (they arrive between replies).
    Attach,
    Scan,
    ScanResults,
    Status,
    /// RSSI and link speed of the current association.
    SignalPoll,
    /// The configured networks' ids.
    ListNetworks,
    AddNetwork,
    SetNetwork {
        id: u32,
        field: Field,
    },
    /// Enables `id` and disables every other network (one home network at a time).
    SelectNetwork(u32),
    RemoveNetwork(u32),
    Disconnect,
}

/// One field of a network block (`wpa_supplicant.conf(5)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// Sent as hex digits, which wpa_supplicant takes as the raw octets.
    Ssid(Vec<u8>),
    /// The 256-bit PSK (not the passphrase), as 64 hex digits.
    Psk([u8; 32]),
    /// WPA-PSK: a WPA2-Personal network.
    KeyMgmtPsk,
    /// Also probe for the name, so a hidden network is found.
    ScanSsid,
    /// `mode 2`: this network block is an access point wpa_supplicant raises.
    AccessPoint,
    /// RSN (WPA2) only, CCMP only: never WPA1/TKIP, never open.
    ProtoRsn,
    PairwiseCcmp,
    GroupCcmp,
    /// The access point's channel, as its centre frequency in MHz.
    FrequencyMhz(u32),
}

impl Request {
    pub fn encode(&self) -> String {
        match self {
            Request::Attach => "ATTACH".into(),
            Request::Scan => "SCAN".into(),
            Request::ScanResults => "SCAN_RESULTS".into(),
            Request::Status => "STATUS".into(),
            Request::SignalPoll => "SIGNAL_POLL".into(),
            Request::ListNetworks => "LIST_NETWORKS".into(),
            Request::AddNetwork => "ADD_NETWORK".into(),
            Request::SetNetwork { id, field } => {
                let (name, value) = match field {
                    Field::Ssid(ssid) => ("ssid", hex(ssid)),
                    Field::Psk(psk) => ("psk", hex(psk)),
                    Field::KeyMgmtPsk => ("key_mgmt", "WPA-PSK".into()),
                    Field::ScanSsid => ("scan_ssid", "1".into()),
                    Field::AccessPoint => ("mode", "2".into()),
                    Field::ProtoRsn => ("proto", "RSN".into()),
                    Field::PairwiseCcmp => ("pairwise", "CCMP".into()),
                    Field::GroupCcmp => ("group", "CCMP".into()),
                    Field::FrequencyMhz(mhz) => ("frequency", mhz.to_string()),
                };
                format!("SET_NETWORK {id} {name} {value}")
            }
            Request::SelectNetwork(id) => format!("SELECT_NETWORK {id}"),
            Request::RemoveNetwork(id) => format!("REMOVE_NETWORK {id}"),
            Request::Disconnect => "DISCONNECT".into(),
        }
    }
}

/// Lower-case hex digits of `bytes` (wpa_supplicant and udhcpd both read them as raw octets).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True for an event (`<level>TEXT`), false for a reply.
pub fn is_event(message: &[u8]) -> bool {
    message.first() == Some(&b'<') && message.get(1).is_some_and(u8::is_ascii_digit)
}

/// `OK`, or why not.
pub fn parse_ok(reply: &str) -> Result<(), ReplyError> {
    match reply.trim_end() {
        "OK" => Ok(()),
        other => Err(refusal(other)),
    }
}

/// ADD_NETWORK's reply: the new network's id.
pub fn parse_network_id(reply: &str) -> Result<u32, ReplyError> {
    let text = reply.trim_end();
    text.parse().map_err(|_| refusal(text))
}

/// LIST_NETWORKS: a header line, then `id \t ssid \t bssid \t flags` per network.
pub fn parse_network_ids(reply: &str) -> Vec<u32> {
    reply
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').next()?.parse().ok())
        .collect()
}

fn refusal(text: &str) -> ReplyError {
    match text {
        "FAIL" => ReplyError::Fail,
        "FAIL-BUSY" => ReplyError::Busy,
        "UNKNOWN COMMAND" => ReplyError::UnknownCommand,
        other => ReplyError::Unexpected(other.chars().take(80).collect()),
    }
}

/// SCAN_RESULTS: a header line, then `bssid \t frequency \t signal \t flags \t ssid` per
/// access point heard. Lines that do not have the five fields are skipped (a reply cut at
/// its 4096-octet bound ends in half a line).
pub fn parse_scan_results(reply: &str) -> Result<Vec<WifiNetwork>, ReplyError> {
    let mut lines = reply.lines();
    match lines.next() {
        Some(header) if header.starts_with("bssid / frequency") => {}
        Some(other) => return Err(refusal(other)),
        None => return Err(ReplyError::Unexpected(String::new())),
    }
    let mut heard = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.splitn(5, '\t').collect();
        let [_bssid, _frequency, signal, flags, ssid] = fields[..] else {
            continue;
        };
        let Ok(dbm) = signal.parse::<i32>() else {
            continue;
        };
        let ssid = decode_text(ssid);
        let Ok(ssid) = String::from_utf8(ssid) else {
            // A name that is not UTF-8 cannot be shown or typed in the wizard.
            continue;
        };
        heard.push(WifiNetwork {
            ssid,
            signal_percent: signal_percent(dbm),
            secured: asks_for_passphrase(flags),
        });
    }
    Ok(heard)
}

/// The flags of a scan result (`[WPA2-PSK-CCMP][ESS]`, `[RSN-SAE-CCMP]`, `[WEP]`, `[ESS]`):
/// true when joining takes a key. OWE ("enhanced open") takes none.
fn asks_for_passphrase(flags: &str) -> bool {
    ["PSK", "SAE", "WEP", "EAP"]
        .iter()
        .any(|kind| flags.contains(kind))
}

/// Signal in dBm to the wizard's 0-100: -100 dBm and weaker is 0, -50 dBm and stronger 100,
/// linear between (the scale NetworkManager uses for nl80211 drivers, so both backends show
/// the same bars).
pub fn signal_percent(dbm: i32) -> u8 {
    let percent = (dbm.clamp(-100, -50) + 100) * 2;
    u8::try_from(percent).unwrap_or(0)
}

/// Undoes wpa_supplicant's `printf_encode` of an SSID: `\\`, `\"`, `\e`, `\n`, `\r`, `\t`
/// and `\xNN`; any other octet stands for itself.
pub fn decode_text(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte != b'\\' || i + 1 == bytes.len() {
            out.push(byte);
            i += 1;
            continue;
        }
        let escaped = bytes[i + 1];
        i += 2;
        match escaped {
            b'\\' | b'"' => out.push(escaped),
            b'e' => out.push(0x1b),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'x' => {
                let digits = bytes
                    .get(i..i + 2)
                    .and_then(|d| std::str::from_utf8(d).ok());
                match digits.and_then(|d| u8::from_str_radix(d, 16).ok()) {
                    Some(value) => {
                        out.push(value);
                        i += 2;
                    }
                    None => out.extend_from_slice(b"\\x"),
                }
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    out
}

/// What STATUS says about the interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// `COMPLETED` when associated (and, for WPA2, the keys are in place); `SCANNING`,
    /// `ASSOCIATING`, `4WAY_HANDSHAKE`, `DISCONNECTED`, `INACTIVE`, `INTERFACE_DISABLED`, ...
    pub wpa_state: String,
    pub ssid: Option<String>,
    /// `station` or `AP`.
    pub mode: Option<String>,
    pub ip_address: Option<String>,
    pub frequency_mhz: Option<u32>,
}

impl LinkStatus {
    pub fn completed(&self) -> bool {
        self.wpa_state == "COMPLETED"
    }
}

/// STATUS: `key=value` lines; unknown keys are ignored (each version adds some).
pub fn parse_status(reply: &str) -> Result<LinkStatus, ReplyError> {
    let mut status = LinkStatus::default();
    let mut seen_state = false;
    for line in reply.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "wpa_state" => {
                status.wpa_state = value.to_string();
                seen_state = true;
            }
            "ssid" => status.ssid = String::from_utf8(decode_text(value)).ok(),
            "mode" => status.mode = Some(value.to_string()),
            "ip_address" => status.ip_address = Some(value.to_string()),
            "freq" => status.frequency_mhz = value.parse().ok(),
            _ => {}
        }
    }
    if !seen_state {
        return Err(refusal(reply.trim_end()));
    }
    Ok(status)
}

/// SIGNAL_POLL: the `RSSI=` line in dBm (`None` when not associated: the reply is `FAIL`).
pub fn parse_signal_dbm(reply: &str) -> Option<i32> {
    reply
        .lines()
        .find_map(|line| line.strip_prefix("RSSI="))
        .and_then(|value| value.parse().ok())
}

/// Why wpa_supplicant stopped trying a network for a while (CTRL-EVENT-SSID-TEMP-DISABLED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisabledReason {
    /// The 4-way handshake failed: the passphrase is wrong.
    WrongKey,
    /// Anything else (`CONN_FAILED`, `AUTH_FAILED`, none given), as wpa_supplicant wrote it.
    Other(String),
}

/// The events Letterbox acts on; the rest are [`Event::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Associated and keyed (station), or a station joined our access point.
    Connected,
    Disconnected,
    TempDisabled(DisabledReason),
    /// A scan found no enabled network.
    NetworkNotFound,
    /// Our access point (a `mode 2` network) is up and beaconing.
    ApEnabled,
    ScanResults,
    Other,
}

/// An event message (`<3>CTRL-EVENT-CONNECTED - Connection to ... completed [id=0 id_str=]`).
/// `None` when it is not an event at all.
pub fn parse_event(message: &str) -> Option<Event> {
    if !is_event(message.as_bytes()) {
        return None;
    }
    let text = &message[message.find('>')? + 1..];
    let (name, rest) = text.split_once(' ').unwrap_or((text, ""));
    Some(match name {
        "CTRL-EVENT-CONNECTED" => Event::Connected,
        "CTRL-EVENT-DISCONNECTED" => Event::Disconnected,
        "CTRL-EVENT-NETWORK-NOT-FOUND" => Event::NetworkNotFound,
        "CTRL-EVENT-SCAN-RESULTS" => Event::ScanResults,
        "AP-ENABLED" => Event::ApEnabled,
        "CTRL-EVENT-SSID-TEMP-DISABLED" => {
            let reason = rest
                .split(' ')
                .find_map(|word| word.strip_prefix("reason="))
                .unwrap_or("");
            Event::TempDisabled(match reason {
                "WRONG_KEY" => DisabledReason::WrongKey,
                other => DisabledReason::Other(other.to_string()),
            })
        }
        _ => Event::Other,
    })
}

/// IEEE 802.11-2020 Annex J.4.1: the PSK is PBKDF2-HMAC-SHA1(passphrase, SSID, 4096
/// iterations, 256 bits). Letterbox stores and sends this, never the passphrase.
pub fn psk(passphrase: &str, ssid: &[u8]) -> [u8; 32] {
    const ITERATIONS: std::num::NonZeroU32 = std::num::NonZeroU32::MIN.saturating_add(4095);
    let mut key = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA1,
        ITERATIONS,
        ssid,
        passphrase.as_bytes(),
        &mut key,
    );
    key
}

/// Parses 64 hex digits (a stored PSK).
pub fn parse_psk(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

pub fn psk_hex(psk: &[u8; 32]) -> String {
    hex(psk)
}
