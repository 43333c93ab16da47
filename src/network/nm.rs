//! The NetworkManager backend, for the .deb on Raspberry Pi OS Bookworm and later (which
//! manage Wi-Fi with NetworkManager): it drives `nmcli` and reads its terse output with
//! [`super::nm_terse`].
//!
//! Every command goes through a [`Runner`], so a test records the exact command lines for
//! each operation and feeds back recorded output (`nm_tests.rs`); [`Processes`] is the real
//! one.
//!
//! Passphrases never appear in a command line: `nmcli ... password X` would show them to
//! anyone who runs `ps` on the box. Instead a connection profile is added without its secret
//! and brought up with `passwd-file /dev/stdin`, and the secret (`802-11-wireless-security.psk:
//! ...`) is written to nmcli's standard input; nmcli hands it to NetworkManager as the secret
//! agent of that activation, and NetworkManager keeps a system-owned secret that a permitted
//! agent supplied in the profile, so the box joins again at the next boot. Nothing here logs
//! the passphrase: [`Invocation`]'s `Display` (what logs and tests see) shows standard input
//! as `<secret>`.
//!
//! The profiles are named [`WIFI_CONNECTION`] and [`HOTSPOT_CONNECTION`], so Letterbox only
//! ever deletes or replaces its own and leaves the person's other connections alone.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, PoisonError};

use tokio::io::AsyncWriteExt;

use super::{
    BoxFuture, Hotspot, Link, Network, NetworkError, WifiNetwork, check_passphrase, check_ssid,
    nm_terse,
};
use crate::limits::{NMCLI_KILL_AFTER, NMCLI_WAIT};
use crate::secret::Secret;

/// The profile that joins the home network.
pub const WIFI_CONNECTION: &str = "letterbox-wifi";
/// The profile of the setup hotspot.
pub const HOTSPOT_CONNECTION: &str = "letterbox-hotspot";
/// The box's address on its hotspot: NetworkManager's own default for `ipv4.method shared`
/// (10.42.0.1/24, with its dnsmasq handing out the rest), written out so that the captive
/// DNS and the setup page's guard know it before the hotspot is up.
pub const HOTSPOT_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 1);
const HOTSPOT_PREFIX: u8 = 24;

/// Where the hotspot's hosts file goes by default (`[network] hotspot_hosts`): NetworkManager's
/// dnsmasq reads it when it starts for the hotspot, through the .deb's drop-in
/// `/etc/NetworkManager/dnsmasq-shared.d/letterbox-hotspot.conf` (`addn-hosts=...`), and goes
/// on without it when it is not there. dnsmasq reads it as `nobody`, so it is world-readable
/// in a world-readable directory (`RuntimeDirectory=letterbox`, mode 0755, which systemd
/// empties when the service stops), not in the data directory. It holds nothing but names
/// and an address: the letterbox user can write it, so it must never be a place for dnsmasq
/// options, which dnsmasq reads as root.
pub const DEFAULT_HOTSPOT_HOSTS: &str = "/run/letterbox/hotspot-hosts";

/// The names phones and computers look up to learn whether a network holds them at a captive
/// portal. Answered with the box's address on the hotspot, their probes reach the web
/// service, which in setup mode redirects them to the wizard (`crate::web::probes`): the
/// phone opens the setup page by itself, as over the SD image's own captive DNS, which answers
/// every name. A hosts file cannot say "every name"; these are the probes' hosts.
pub const CAPTIVE_PROBE_HOSTS: [&str; 14] = [
    // Android and ChromeOS.
    "connectivitycheck.gstatic.com",
    "connectivitycheck.android.com",
    "clients3.google.com",
    "clients1.google.com",
    "www.google.com",
    // iOS and macOS.
    "captive.apple.com",
    "www.apple.com",
    // Windows.
    "www.msftconnecttest.com",
    "www.msftncsi.com",
    // Firefox.
    "detectportal.firefox.com",
    // GNOME, Ubuntu, KDE, Debian (NetworkManager's own check).
    "nmcheck.gnome.org",
    "connectivity-check.ubuntu.com",
    "networkcheck.kde.org",
    "network-test.debian.org",
];

/// One command to run: the program, its arguments, and what to write to its standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: &'static str,
    pub args: Vec<String>,
    pub stdin: Option<Secret<String>>,
}

impl Invocation {
    fn nmcli(args: &[&str]) -> Invocation {
        Invocation {
            program: "nmcli",
            args: args.iter().map(|a| a.to_string()).collect(),
            stdin: None,
        }
    }

    fn with_secret(mut self, stdin: String) -> Invocation {
        self.stdin = Some(Secret::new(stdin));
        self
    }
}

/// The command line as a shell would take it, single-quoting what needs it; standard input,
/// which only ever carries a secret, shows as `<secret>`.
impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program)?;
        for arg in &self.args {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:,=[]*".contains(c));
            if plain {
                write!(f, " {arg}")?;
            } else {
                write!(f, " '{}'", arg.replace('\'', r"'\''"))?;
            }
        }
        if self.stdin.is_some() {
            f.write_str(" < <secret>")?;
        }
        Ok(())
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Finished {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs commands; the seam the recorded-command test replaces.
pub trait Runner: Send + Sync + 'static {
    fn run<'a>(
        &'a self,
        invocation: &'a Invocation,
    ) -> BoxFuture<'a, Result<Finished, NetworkError>>;
}

/// Runs commands as processes, in the C locale so that NetworkManager's messages are the
/// English ones [`nm_terse::failure`] knows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Processes;

impl Runner for Processes {
    fn run<'a>(
        &'a self,
        invocation: &'a Invocation,
    ) -> BoxFuture<'a, Result<Finished, NetworkError>> {
        Box::pin(async move {
            let failed =
                |e: std::io::Error| NetworkError::Backend(format!("{}: {e}", invocation.program));
            let mut child = tokio::process::Command::new(invocation.program)
                .args(&invocation.args)
                .env("LC_ALL", "C")
                .stdin(if invocation.stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(failed)?;
            if let (Some(secret), Some(mut stdin)) = (&invocation.stdin, child.stdin.take()) {
                stdin
                    .write_all(secret.expose().as_bytes())
                    .await
                    .map_err(failed)?;
                // Dropped here: nmcli reads its password file to the end.
            }
            let output = tokio::time::timeout(NMCLI_KILL_AFTER, child.wait_with_output())
                .await
                .map_err(|_| {
                    NetworkError::Backend(format!(
                        "{} did not finish within {} s",
                        invocation.program,
                        NMCLI_KILL_AFTER.as_secs()
                    ))
                })?
                .map_err(failed)?;
            Ok(Finished {
                success: output.status.success(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        })
    }
}

/// The NetworkManager backend for one Wi-Fi interface.
#[derive(Debug)]
pub struct NetworkManager<R: Runner = Processes> {
    runner: R,
    interface: String,
    /// The hosts file written while the hotspot is up ([`DEFAULT_HOTSPOT_HOSTS`]).
    hotspot_hosts: PathBuf,
    /// Set while the hotspot is up.
    hotspot: Mutex<Option<IpAddr>>,
}

impl<R: Runner> NetworkManager<R> {
    pub fn new(runner: R, interface: &str, hotspot_hosts: &Path) -> NetworkManager<R> {
        NetworkManager {
            runner,
            interface: interface.to_string(),
            hotspot_hosts: hotspot_hosts.to_path_buf(),
            hotspot: Mutex::new(None),
        }
    }

    /// Writes the hosts file that sends the captive-portal probes to the box (whole or not
    /// at all: written beside it and renamed). Without it the hotspot still works, but a
    /// phone does not open the setup page by itself, so a failure is only logged.
    async fn write_hotspot_hosts(&self) {
        let mut text = String::from(
            "# Written by Letterbox while its setup hotspot is up; NetworkManager's dnsmasq \
             reads it (/etc/NetworkManager/dnsmasq-shared.d/letterbox-hotspot.conf).\n",
        );
        for host in CAPTIVE_PROBE_HOSTS {
            text.push_str(&format!("{HOTSPOT_ADDRESS} {host}\n"));
        }
        let partial = self.hotspot_hosts.with_extension("partial");
        let written = async {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(&partial)
                .await?;
            file.write_all(text.as_bytes()).await?;
            // The mode again: the service's umask (0027) took the others' read from `open`.
            file.set_permissions(std::fs::Permissions::from_mode(0o644))
                .await?;
            drop(file);
            tokio::fs::rename(&partial, &self.hotspot_hosts).await
        };
        if let Err(error) = written.await {
            tracing::warn!(
                path = %self.hotspot_hosts.display(),
                %error,
                "network: cannot write the hotspot's hosts file; phones will not open the \
                 setup page by themselves"
            );
        }
    }

    /// Removes the hosts file, so that a dnsmasq NetworkManager starts for anything else
    /// answers those names as usual. Missing is what we wanted.
    async fn remove_hotspot_hosts(&self) {
        match tokio::fs::remove_file(&self.hotspot_hosts).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(
                path = %self.hotspot_hosts.display(),
                %error,
                "network: cannot remove the hotspot's hosts file"
            ),
        }
    }

    async fn run(&self, invocation: Invocation) -> Result<Finished, NetworkError> {
        tracing::debug!(command = %invocation, "network: running");
        self.runner.run(&invocation).await
    }

    /// Runs a command that must succeed; a failure is read with [`nm_terse::failure`].
    async fn must(&self, ssid: &str, invocation: Invocation) -> Result<Finished, NetworkError> {
        let finished = self.run(invocation).await?;
        if finished.success {
            Ok(finished)
        } else {
            Err(nm_terse::failure(ssid, &finished.stderr))
        }
    }

    /// Deletes one of our profiles if it exists. A missing profile is what we wanted; any
    /// other failure is only logged, since the `add` that follows reports what matters.
    async fn delete(&self, name: &str) -> Result<(), NetworkError> {
        let finished = self
            .run(Invocation::nmcli(&["connection", "delete", "id", name]))
            .await?;
        if !finished.success && !finished.stderr.contains("unknown connection") {
            tracing::warn!(name, stderr = %finished.stderr.trim(), "network: cannot delete profile");
        }
        Ok(())
    }

    /// Brings one of our profiles up, handing the WPA2 passphrase over standard input.
    async fn up(
        &self,
        ssid: &str,
        name: &str,
        passphrase: &Secret<String>,
    ) -> Result<(), NetworkError> {
        let wait = NMCLI_WAIT.as_secs().to_string();
        let up = Invocation::nmcli(&[
            "-w",
            &wait,
            "connection",
            "up",
            "id",
            name,
            "passwd-file",
            "/dev/stdin",
        ])
        .with_secret(format!(
            "802-11-wireless-security.psk:{}\n",
            passphrase.expose()
        ));
        self.must(ssid, up).await.map(drop)
    }

    async fn scan_now(&self, rescan: &str) -> Result<Vec<WifiNetwork>, NetworkError> {
        let list = Invocation::nmcli(&[
            "-t",
            "-e",
            "yes",
            "-f",
            "SSID,SIGNAL,SECURITY",
            "device",
            "wifi",
            "list",
            "ifname",
            &self.interface,
            "--rescan",
            rescan,
        ]);
        let finished = self.must("", list).await?;
        Ok(nm_terse::scan(&finished.stdout))
    }

    async fn join_network(
        &self,
        ssid: &str,
        passphrase: &Secret<String>,
    ) -> Result<(), NetworkError> {
        check_ssid(ssid)?;
        check_passphrase(passphrase)?;
        // Scan first: "not in range" is then said plainly instead of after a long timeout.
        if !self.scan_now("yes").await?.iter().any(|n| n.ssid == ssid) {
            return Err(NetworkError::NotInRange(ssid.to_string()));
        }
        self.delete(WIFI_CONNECTION).await?;
        let add = Invocation::nmcli(&[
            "connection",
            "add",
            "type",
            "wifi",
            "con-name",
            WIFI_CONNECTION,
            "ifname",
            &self.interface,
            "ssid",
            ssid,
            "autoconnect",
            "yes",
            "wifi-sec.key-mgmt",
            "wpa-psk",
        ]);
        self.must(ssid, add).await?;
        if let Err(error) = self.up(ssid, WIFI_CONNECTION, passphrase).await {
            // A profile with a wrong passphrase would be retried at every boot.
            self.delete(WIFI_CONNECTION).await?;
            return Err(error);
        }
        tracing::info!(ssid, interface = %self.interface, "network: joined");
        Ok(())
    }

    /// Raises the WPA2-PSK setup hotspot `ssid` (2.4 GHz, which every phone hears; CCMP
    /// only) and returns the box's address on it. NetworkManager's `ipv4.method shared`
    /// runs the DHCP server and the DNS forwarder for it (a dnsmasq), which the .deb's
    /// drop-in makes announce the captive-portal API (option 114) and answer the probes'
    /// names from the hosts file (`[network] hotspot_hosts`), written here before the
    /// dnsmasq starts.
    pub async fn raise_hotspot(
        &self,
        ssid: &str,
        passphrase: &Secret<String>,
    ) -> Result<IpAddr, NetworkError> {
        check_ssid(ssid)?;
        check_passphrase(passphrase)?;
        self.delete(HOTSPOT_CONNECTION).await?;
        let address = format!("{HOTSPOT_ADDRESS}/{HOTSPOT_PREFIX}");
        let add = Invocation::nmcli(&[
            "connection",
            "add",
            "type",
            "wifi",
            "con-name",
            HOTSPOT_CONNECTION,
            "ifname",
            &self.interface,
            "ssid",
            ssid,
            "autoconnect",
            "no",
            "802-11-wireless.mode",
            "ap",
            "802-11-wireless.band",
            "bg",
            "ipv4.method",
            "shared",
            "ipv4.addresses",
            &address,
            "ipv6.method",
            "disabled",
            "wifi-sec.key-mgmt",
            "wpa-psk",
            "wifi-sec.proto",
            "rsn",
            "wifi-sec.pairwise",
            "ccmp",
            "wifi-sec.group",
            "ccmp",
        ]);
        self.must(ssid, add).await?;
        self.write_hotspot_hosts().await;
        if let Err(error) = self.up(ssid, HOTSPOT_CONNECTION, passphrase).await {
            self.remove_hotspot_hosts().await;
            return Err(error);
        }
        let address = IpAddr::V4(HOTSPOT_ADDRESS);
        *self.hotspot.lock().unwrap_or_else(PoisonError::into_inner) = Some(address);
        tracing::info!(ssid, interface = %self.interface, "network: hotspot up");
        Ok(address)
    }

    /// Takes the hotspot down (the home network's profile, if any, comes back by itself:
    /// it autoconnects). Lowering a hotspot that is not up is not an error.
    pub async fn lower_hotspot(&self) -> Result<(), NetworkError> {
        let down = Invocation::nmcli(&["connection", "down", "id", HOTSPOT_CONNECTION]);
        let finished = self.run(down).await?;
        let absent = finished.stderr.contains("not an active connection")
            || finished.stderr.contains("unknown connection");
        if !finished.success && !absent {
            return Err(nm_terse::failure("", &finished.stderr));
        }
        self.remove_hotspot_hosts().await;
        *self.hotspot.lock().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }

    /// The network the radio is on, its signal and the box's address there; `None` when the
    /// radio is associated with nothing.
    pub async fn link(&self) -> Result<Option<Link>, NetworkError> {
        let list = Invocation::nmcli(&[
            "-t",
            "-e",
            "yes",
            "-f",
            "IN-USE,SSID,SIGNAL",
            "device",
            "wifi",
            "list",
            "ifname",
            &self.interface,
            "--rescan",
            "no",
        ]);
        let Some((ssid, signal_percent)) = nm_terse::in_use(&self.must("", list).await?.stdout)
        else {
            return Ok(None);
        };
        let show = Invocation::nmcli(&[
            "-t",
            "-e",
            "yes",
            "-f",
            "IP4.ADDRESS",
            "device",
            "show",
            &self.interface,
        ]);
        let address = nm_terse::first_address(&self.must("", show).await?.stdout);
        Ok(Some(Link {
            ssid,
            signal_percent,
            address,
        }))
    }
}

impl<R: Runner> NetworkManager<R> {
    /// Sets the radio's regulatory domain (ISO 3166-1 alpha-2, checked by the caller).
    /// NetworkManager has no setting for it (it starts its wpa_supplicant without
    /// `country=`), so this sets the kernel's own with `iw reg set`, as Raspberry Pi OS's
    /// raspi-config does. That needs CAP_NET_ADMIN.
    async fn set_regulatory_domain(&self, country: &str) -> Result<(), NetworkError> {
        let set = Invocation {
            program: "iw",
            args: vec!["reg".into(), "set".into(), country.to_string()],
            stdin: None,
        };
        let finished = self.run(set).await?;
        if finished.success {
            Ok(())
        } else {
            let reason = finished.stderr.trim();
            Err(NetworkError::Backend(format!(
                "iw reg set {country}: {}",
                reason.lines().next().unwrap_or("failed")
            )))
        }
    }
}

impl<R: Runner> Network for NetworkManager<R> {
    fn has_wifi(&self) -> bool {
        true
    }

    fn scan(&self) -> BoxFuture<'_, Result<Vec<WifiNetwork>, NetworkError>> {
        Box::pin(self.scan_now("yes"))
    }

    fn join<'a>(
        &'a self,
        ssid: &'a str,
        passphrase: &'a Secret<String>,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(self.join_network(ssid, passphrase))
    }

    fn hotspot_address(&self) -> Option<IpAddr> {
        *self.hotspot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_country<'a>(&'a self, country: &'a str) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(self.set_regulatory_domain(country))
    }

    fn has_uplink(&self) -> BoxFuture<'_, bool> {
        Box::pin(async {
            let wifi = NetworkManager::link(self).await.ok().flatten();
            wifi.is_some_and(|link| link.address.is_some()) || super::wired_uplink(&self.interface)
        })
    }

    /// NetworkManager's shared mode runs its own DHCP server and DNS forwarder (dnsmasq) on
    /// the hotspot; the captive-portal URL it announces is the .deb drop-in's, which names
    /// `crate::web::CAPTIVE_API_PATH` (the only `captive_path` there is).
    fn raise_hotspot<'a>(
        &'a self,
        hotspot: &'a Hotspot,
        _captive_path: &'a str,
    ) -> BoxFuture<'a, Result<IpAddr, NetworkError>> {
        Box::pin(NetworkManager::raise_hotspot(
            self,
            &hotspot.ssid,
            &hotspot.passphrase,
        ))
    }

    fn lower_hotspot(&self) -> BoxFuture<'_, Result<(), NetworkError>> {
        Box::pin(NetworkManager::lower_hotspot(self))
    }

    /// Port 53 on the hotspot is NetworkManager's dnsmasq's.
    fn answers_hotspot_dns(&self) -> bool {
        true
    }
}
