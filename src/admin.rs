//! Account, alias and status operations, shared by the CLI and the daemon's control socket.
//!
//! Only one process may hold the redb file, so while `letterbox run` is running, the CLI sends
//! a request over `<data_dir>/control.sock` (mode 0600) and the daemon carries it out; when no
//! daemon answers, the CLI opens the store itself and runs the same code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{AuthError, Authenticator};
use crate::config::Config;
use crate::secret::Secret;
use crate::status::Status;
use crate::store::{Store, StoreError};

/// A request line is at most this long (passwords and alias lists included).
const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    UserAdd {
        address: String,
        password: String,
        /// May use the admin page (`letterbox user add --admin`).
        #[serde(default)]
        administrator: bool,
        /// The most octets of mail it may hold (`--quota`).
        #[serde(default)]
        quota: Option<u64>,
    },
    UserPasswd {
        address: String,
        password: String,
    },
    UserDelete {
        address: String,
    },
    /// Sets (`Some`) or removes (`None`) an account's quota.
    UserQuota {
        address: String,
        quota: Option<u64>,
    },
    UserList,
    AliasAdd {
        address: String,
        targets: Vec<String>,
    },
    AliasDelete {
        address: String,
    },
    AliasList,
    Status,
    /// The outbound queue, oldest first.
    QueueList,
    /// Make every queued recipient due now.
    QueueFlush,
    /// Drop a queued message without delivering it.
    QueueDelete {
        id: u64,
    },
    /// Run the health checks now and answer the `health::Report` (offline: in this process).
    Health,
    /// Back up to the USB drive now; answers the `backup::BackupRun`.
    Backup,
    /// A virtual button press on the running daemon.
    Button {
        press: crate::button::Press,
    },
    /// What the panel shows now: `{size, bits}` (rows of 16 bytes, base64) and `{text_size,
    /// text}` (the character rows, framed).
    Panel,
    /// Enter (`on`) or leave setup mode; answers `{mode}` once the mode is published.
    Setup {
        on: bool,
    },
    /// Join a Wi-Fi network and remember it (`letterbox wifi join`). A running daemon's
    /// control loop does it, since it owns the radio (a setup-mode hotspot is lowered first,
    /// as for the setup page's join); without a daemon this process does. Answers `{ssid,
    /// joining}`: "joined", or "after_hotspot" (the outcome shows in `letterbox status`).
    WifiJoin {
        ssid: String,
        passphrase: String,
    },
    /// Write the Maildir tar of one account (or all) to `path`, an absolute path the daemon
    /// writes itself: a stream of any size does not fit a JSON line. Answers the
    /// `ExportSummary`.
    Export {
        path: std::path::PathBuf,
        #[serde(default)]
        account: Option<String>,
    },
    /// Read a Maildir tar, a Maildir directory or an mbox file at `path` into the store.
    /// Answers the `ImportSummary`.
    Import {
        path: std::path::PathBuf,
        #[serde(default)]
        account: Option<String>,
    },
    /// Teach the content filter: every message under `spam` (Maildir folders, directories of
    /// message files, mbox files; absolute paths the daemon reads) as spam, under `ham` as
    /// ham. Answers the `spam::TrainSummary`.
    SpamTrain {
        spam: Vec<std::path::PathBuf>,
        ham: Vec<std::path::PathBuf>,
    },
    /// The content filter's score of every message under `paths`: a list of
    /// `spam::ClassifiedFile`.
    SpamClassify {
        paths: Vec<std::path::PathBuf>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub data: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    #[error(transparent)]
    Spam(#[from] crate::spam::SpamError),
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

/// What the admin operations need.
#[derive(Clone)]
pub struct Admin {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Authenticator,
    pub status: watch::Sender<Status>,
    /// The running daemon's panel; `None` offline.
    pub panel: Option<crate::panel::Handle>,
    /// The running daemon's mode owner; `None` offline.
    pub control: Option<crate::control::Control>,
    /// The running daemon's health checker; `None` offline (the checks then run here).
    pub health: Option<crate::health::Health>,
    /// The running daemon's backup task; `None` offline (the backup then runs here).
    pub backup: Option<crate::backup::Backup>,
}

impl Admin {
    pub async fn execute(&self, request: Request) -> Response {
        match self.run(request).await {
            Ok(data) => Response {
                ok: true,
                error: None,
                data,
            },
            Err(error) => Response {
                ok: false,
                error: Some(error.to_string()),
                data: Value::Null,
            },
        }
    }

    async fn run(&self, request: Request) -> Result<Value, AdminError> {
        match request {
            Request::UserAdd {
                address,
                password,
                administrator,
                quota,
            } => {
                let address = self.local_address(&address)?;
                let hash = self
                    .auth
                    .hash(&checked_password(password, &address)?)
                    .await?;
                self.store
                    .create_account_as(&address, &hash, administrator)
                    .await?;
                if quota.is_some() {
                    self.store.set_quota(&address, quota).await?;
                }
                Ok(json!({ "address": address, "administrator": administrator, "quota": quota }))
            }
            Request::UserQuota { address, quota } => {
                let address = self.local_address(&address)?;
                self.store.set_quota(&address, quota).await?;
                Ok(json!({ "address": address, "quota": quota }))
            }
            Request::UserPasswd { address, password } => {
                let address = self.local_address(&address)?;
                let hash = self
                    .auth
                    .hash(&checked_password(password, &address)?)
                    .await?;
                self.store.set_password(&address, &hash).await?;
                Ok(json!({ "address": address }))
            }
            Request::UserDelete { address } => {
                let address = self.local_address(&address)?;
                self.store.delete_account(&address).await?;
                Ok(json!({ "address": address }))
            }
            Request::UserList => {
                Ok(serde_json::to_value(self.store.accounts().await?).unwrap_or(Value::Null))
            }
            Request::AliasAdd { address, targets } => {
                let address = self.local_address(&address)?;
                let targets = targets
                    .iter()
                    .map(|t| self.local_address(t))
                    .collect::<Result<Vec<_>, _>>()?;
                self.store.set_alias(&address, &targets).await?;
                Ok(json!({ "address": address, "targets": targets }))
            }
            Request::AliasDelete { address } => {
                let address = self.local_address(&address)?;
                self.store.delete_alias(&address).await?;
                Ok(json!({ "address": address }))
            }
            Request::AliasList => {
                let list: Vec<Value> = self
                    .store
                    .aliases()
                    .await?
                    .into_iter()
                    .map(|(address, targets)| json!({ "address": address, "targets": targets }))
                    .collect();
                Ok(Value::Array(list))
            }
            Request::QueueList => {
                Ok(serde_json::to_value(self.store.queue_list().await?).unwrap_or(Value::Null))
            }
            Request::QueueFlush => Ok(json!({ "flushed": self.store.queue_flush().await? })),
            Request::QueueDelete { id } => {
                self.store.queue_delete(id).await?;
                Ok(json!({ "id": id }))
            }
            Request::Status => {
                Ok(serde_json::to_value(self.status.borrow().clone()).unwrap_or(Value::Null))
            }
            Request::Health => {
                let report = match &self.health {
                    Some(health) => health
                        .check_now()
                        .await
                        .ok_or_else(|| AdminError::Invalid("the daemon is shutting down".into()))?,
                    None => crate::health::run_checks(&self.config).await,
                };
                Ok(serde_json::to_value(report).unwrap_or(Value::Null))
            }
            Request::Backup => {
                let run = match &self.backup {
                    Some(backup) => backup
                        .now()
                        .await
                        .ok_or_else(|| AdminError::Invalid("the daemon is shutting down".into()))?,
                    None => crate::backup::run_once(&self.config, &self.store).await,
                };
                if !run.ok {
                    return Err(AdminError::Invalid(run.said));
                }
                Ok(serde_json::to_value(run).unwrap_or(Value::Null))
            }
            Request::Button { press } => {
                crate::panel::press(self.panel.as_ref(), press)
                    .await
                    .map_err(AdminError::Invalid)?;
                Ok(json!({ "press": press }))
            }
            Request::Setup { on } => {
                let control = self.control.as_ref().ok_or_else(|| {
                    AdminError::Invalid(
                        "the daemon is not running (start it with `letterbox run`)".into(),
                    )
                })?;
                let mode = control
                    .ask(crate::control::Command::Setup(on))
                    .await
                    .map_err(|error| AdminError::Invalid(error.to_string()))?;
                Ok(json!({ "mode": mode }))
            }
            Request::WifiJoin { ssid, passphrase } => {
                use crate::control::Joining;
                let passphrase = Secret::new(passphrase);
                let outcome = match &self.control {
                    Some(control) => control
                        .join(&ssid, &passphrase)
                        .await
                        .map_err(|error| AdminError::Invalid(error.to_string()))?,
                    None => crate::network::from_config(&self.config)
                        .join(&ssid, &passphrase)
                        .await
                        .map(|()| Joining::Joined),
                };
                let joining = match outcome.map_err(|e| AdminError::Invalid(e.to_string()))? {
                    Joining::Joined => "joined",
                    Joining::AfterHotspot => "after_hotspot",
                };
                Ok(json!({ "ssid": ssid, "joining": joining }))
            }
            Request::Export { path, account } => {
                let account = account.map(|a| self.local_address(&a)).transpose()?;
                let summary =
                    crate::export::export_file(&self.store, account, &absolute(&path)?).await?;
                Ok(serde_json::to_value(summary).unwrap_or(Value::Null))
            }
            Request::Import { path, account } => {
                let account = account.map(|a| self.local_address(&a)).transpose()?;
                let options = crate::export::ImportOptions {
                    account,
                    max_message_size: self.config.limits.max_append_size.0,
                };
                let summary =
                    crate::export::import_path(&self.store, &absolute(&path)?, options).await?;
                Ok(serde_json::to_value(summary).unwrap_or(Value::Null))
            }
            Request::SpamTrain { spam, ham } => {
                let spam = spam
                    .iter()
                    .map(|p| absolute(p))
                    .collect::<Result<Vec<_>, _>>()?;
                let ham = ham
                    .iter()
                    .map(|p| absolute(p))
                    .collect::<Result<Vec<_>, _>>()?;
                let summary = crate::spam::train(&self.store, &spam, &ham).await?;
                Ok(serde_json::to_value(summary).unwrap_or(Value::Null))
            }
            Request::SpamClassify { paths } => {
                let paths = paths
                    .iter()
                    .map(|p| absolute(p))
                    .collect::<Result<Vec<_>, _>>()?;
                let classifier = crate::spam::Classifier::new(self.store.clone());
                let mut results = Vec::new();
                crate::spam::classify_files(&classifier, &paths, &mut |scored| {
                    results.push(scored)
                })
                .await?;
                Ok(serde_json::to_value(results).unwrap_or(Value::Null))
            }
            Request::Panel => Ok(crate::panel::picture(
                self.panel.as_ref(),
                &self.config,
                &self.status.borrow(),
            )),
        }
    }

    /// An address in one of the local domains, lowercased; a bare name takes the first domain.
    fn local_address(&self, address: &str) -> Result<String, AdminError> {
        let address = self.auth.account_name(address);
        let (local, domain) = address
            .rsplit_once('@')
            .ok_or_else(|| AdminError::Invalid(format!("{address:?} is not an address")))?;
        let valid_local = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| {
                // RFC 6531 §3.3: SMTPUTF8 adds non-ASCII characters to the local part
                // (`jürgen@`); letters and digits of any script, no symbols or spaces.
                if c.is_ascii() {
                    c.is_ascii_alphanumeric() || "!#$&'*+-/=?^_`{|}~.".contains(c)
                } else {
                    c.is_alphanumeric()
                }
            });
        if !valid_local {
            return Err(AdminError::Invalid(format!(
                "{address:?}: the part before @ may use letters (any script), digits and . _ - + only"
            )));
        }
        if !self.config.is_local_domain(domain) {
            return Err(AdminError::Invalid(format!(
                "{domain} is not a local domain (local domains: {})",
                self.config.domains.join(", ")
            )));
        }
        Ok(address)
    }
}

/// The daemon's working directory is not the caller's: a relative path is refused rather
/// than read or written somewhere unexpected (the CLI makes paths absolute before sending).
fn absolute(path: &Path) -> Result<PathBuf, AdminError> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Err(AdminError::Invalid(format!(
            "{} is not an absolute path",
            path.display()
        )))
    }
}

/// The password as given (without the line end `--password-stdin` reads), if it passes the
/// strength check for this account; the refusal says why in one line.
fn checked_password(password: String, address: &str) -> Result<Secret<String>, AdminError> {
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    crate::auth::strength::check(&password, &[address])
        .map_err(|weakness| AdminError::Invalid(weakness.to_string()))?;
    Ok(Secret::new(password))
}

/// Serves the control socket until shutdown.
pub async fn serve(
    listener: UnixListener,
    admin: Admin,
    configs: watch::Receiver<Arc<Config>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        // Each request sees the config in effect now (the settings may have changed).
        let admin = Admin {
            config: configs.borrow().clone(),
            ..admin.clone()
        };
        tracker.spawn(async move {
            let _ = answer(stream, &admin).await;
        });
    }
}

async fn answer(stream: UnixStream, admin: &Admin) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST as u64);
    reader.read_until(b'\n', &mut line).await?;
    let response = match serde_json::from_slice::<Request>(&line) {
        Ok(request) => admin.execute(request).await,
        Err(error) => Response {
            ok: false,
            error: Some(format!("bad request: {error}")),
            data: Value::Null,
        },
    };
    let mut bytes = serde_json::to_vec(&response).unwrap_or_default();
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await
}

/// Sends one request to a running daemon. `None` if no daemon listens on the socket.
pub async fn send(data_dir: &Path, request: &Request) -> Option<std::io::Result<Response>> {
    let stream = UnixStream::connect(socket_path(data_dir)).await.ok()?;
    Some(exchange(stream, request).await)
}

async fn exchange(stream: UnixStream, request: &Request) -> std::io::Result<Response> {
    let (read, mut write) = stream.into_split();
    let mut bytes = serde_json::to_vec(request)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    Ok(serde_json::from_str(&line)?)
}
