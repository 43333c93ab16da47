//! The `letterbox` command: the daemon and its operator interface (DESIGN.md).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use letterbox::admin::{self, Admin, Request, Response};
use letterbox::config::Config;
use letterbox::settings::Layered;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "letterbox",
    version,
    about = "A household mail box: SMTP, IMAP and POP3"
)]
struct Cli {
    /// Config file (TOML). Also from $LETTERBOX_CONFIG; without either, development defaults.
    #[arg(long, global = true, env = "LETTERBOX_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run all services.
    Run,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage aliases (an address that delivers to one or more accounts).
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Listeners up/down, messages, queue depth, storage.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The outbound queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The DNS records to publish: MX, SPF, DKIM, DMARC (and advice on reverse DNS).
    DnsRecords,
    /// Press the running daemon's button (for boards without one).
    Button {
        #[arg(value_parser = ["short", "long", "verylong"])]
        press: String,
    },
    /// Enter setup mode on the running daemon (or leave it with --off).
    Setup {
        #[arg(long)]
        off: bool,
    },
    /// The configuration in effect.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The Wi-Fi radio through the network backend (`[network] backend`), directly.
    #[command(subcommand)]
    Wifi(WifiCommand),
    /// Write what the OLED shows now as a PNG picture.
    Panel {
        #[arg(long)]
        png: PathBuf,
        /// Each panel pixel becomes N×N picture pixels.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
        scale: u32,
    },
}

#[derive(Subcommand)]
enum WifiCommand {
    /// Networks in range, strongest first.
    Scan,
    /// Join a network and remember it; the passphrase is read from standard input.
    Join {
        ssid: String,
        #[arg(long, required = true)]
        passphrase_stdin: bool,
    },
    /// The network joined now, its signal and address.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Every value in effect and where it came from: default, config file or settings file.
    Show,
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Queued messages with their recipients, attempts and last errors.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Try every queued message now.
    Flush,
    /// Drop a queued message (no DSN is sent).
    Delete { id: u64 },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an account; the password is read from the first line of standard input.
    Add {
        address: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List accounts with their message counts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change an account's password (read from standard input).
    Passwd {
        address: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Delete an account and all its mail.
    Delete { address: String },
}

#[derive(Subcommand)]
enum AliasCommand {
    /// Make ADDRESS deliver to every TARGET account.
    Add {
        address: String,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Delete {
        address: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    limit_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(letterbox::limits::BLOCKING_THREADS)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("letterbox: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("letterbox: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc keeps freed memory in per-thread arenas and serves buffers of 64 KiB and more (body
/// chunks, redb pages) from its heaps, where they fragment: resident memory grew by about a
/// message's size with every large message stored and read (bench/RESULTS.md). Two arenas,
/// and such buffers mapped and unmapped on their own, keep it flat. musl's allocator already
/// maps large blocks separately.
#[cfg(target_env = "gnu")]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only adjusts allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
    }
}

#[cfg(not(target_env = "gnu"))]
fn limit_malloc_arenas() {}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // The config file with the settings the setup page wrote laid over it.
    let layered = Layered::load(cli.config.as_deref())?;
    let config = layered.config.clone();
    let (request, json) = match cli.command {
        Command::Run => return serve(config, cli.config).await,
        Command::User(UserCommand::Add { address, .. }) => (
            Request::UserAdd {
                address,
                password: read_password()?,
            },
            false,
        ),
        Command::User(UserCommand::Passwd { address, .. }) => (
            Request::UserPasswd {
                address,
                password: read_password()?,
            },
            false,
        ),
        Command::User(UserCommand::Delete { address }) => (Request::UserDelete { address }, false),
        Command::User(UserCommand::List { json }) => (Request::UserList, json),
        Command::Alias(AliasCommand::Add { address, targets }) => {
            (Request::AliasAdd { address, targets }, false)
        }
        Command::Alias(AliasCommand::Delete { address }) => {
            (Request::AliasDelete { address }, false)
        }
        Command::Alias(AliasCommand::List { json }) => (Request::AliasList, json),
        Command::Status { json } => (Request::Status, json),
        Command::Queue(QueueCommand::List { json }) => (Request::QueueList, json),
        Command::Queue(QueueCommand::Flush) => (Request::QueueFlush, false),
        Command::Queue(QueueCommand::Delete { id }) => (Request::QueueDelete { id }, false),
        Command::DnsRecords => {
            let dkim = letterbox::outbound::dkim::Dkim::load_or_create(&config)?;
            print!("{}", letterbox::outbound::dkim::dns_records(&config, &dkim));
            return Ok(());
        }
        Command::Button { press } => {
            let press = serde_json::from_value(Value::String(press))?;
            (Request::Button { press }, false)
        }
        Command::Setup { off } => (Request::Setup { on: !off }, false),
        Command::Config(ConfigCommand::Show) => {
            print!("{}", layered.show());
            return Ok(());
        }
        Command::Panel { png, scale } => return write_panel(&config, &png, scale).await,
        Command::Wifi(command) => return wifi(&config, command).await,
    };
    let response = execute(&config, &request).await?;
    if !response.ok {
        bail!(
            "{}",
            response
                .error
                .unwrap_or_else(|| "the request failed".into())
        );
    }
    print_response(&request, &response.data, json);
    Ok(())
}

/// Through the running daemon if there is one, else directly on the store.
async fn execute(config: &Config, request: &Request) -> anyhow::Result<Response> {
    if let Some(answer) = admin::send(&config.data_dir, request).await {
        return answer.context("the daemon's control socket did not answer properly");
    }
    let (store, auth, status) = letterbox::app::open(config)?;
    if matches!(request, Request::Status | Request::Panel) {
        let offline = letterbox::app::offline_status(config, &store)?;
        status.send_replace(offline);
    }
    let admin = Admin {
        config: std::sync::Arc::new(config.clone()),
        store,
        auth,
        status,
        panel: None,
        control: None,
    };
    Ok(admin.execute(request.clone()).await)
}

async fn write_panel(config: &Config, path: &std::path::Path, scale: u32) -> anyhow::Result<()> {
    let response = execute(config, &Request::Panel).await?;
    if !response.ok {
        bail!("{}", response.error.unwrap_or_default());
    }
    let frame = letterbox::panel::frame_of_picture(&response.data).map_err(anyhow::Error::msg)?;
    frame
        .write_png(path, scale)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "wrote {} ({} panel, scale {scale})",
        path.display(),
        frame.size()
    );
    Ok(())
}

/// `letterbox wifi ...`: the backend itself, not the daemon, does the work (wpa_supplicant
/// serves both; the stored network is written by whichever joins).
async fn wifi(config: &Config, command: WifiCommand) -> anyhow::Result<()> {
    let network = letterbox::network::from_config(config);
    match command {
        WifiCommand::Scan => {
            for heard in network.scan().await? {
                let lock = if heard.secured { "" } else { "  (open)" };
                println!("{:>3} %  {}{lock}", heard.signal_percent, heard.ssid);
            }
        }
        WifiCommand::Join { ssid, .. } => {
            let passphrase = letterbox::secret::Secret::new(read_password()?);
            network.join(&ssid, &passphrase).await?;
            println!("joined {ssid}");
        }
        WifiCommand::Status { json } => {
            let link = network.link().await;
            if json {
                println!("{}", serde_json::to_string_pretty(&link)?);
            } else {
                match link {
                    Some(link) => println!("{}", link.describe()),
                    None => println!("not joined to a Wi-Fi network"),
                }
            }
        }
    }
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn print_response(request: &Request, data: &Value, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(data).unwrap_or_default());
        return;
    }
    match request {
        Request::UserAdd { .. } => println!("added {}", data["address"].as_str().unwrap_or("")),
        Request::UserPasswd { .. } => println!(
            "password changed for {}",
            data["address"].as_str().unwrap_or("")
        ),
        Request::UserDelete { .. } => {
            println!("deleted {}", data["address"].as_str().unwrap_or(""))
        }
        Request::AliasAdd { .. } => println!(
            "{} -> {}",
            data["address"].as_str().unwrap_or(""),
            join(&data["targets"])
        ),
        Request::AliasDelete { .. } => {
            println!("deleted alias {}", data["address"].as_str().unwrap_or(""))
        }
        Request::UserList => {
            for account in data.as_array().into_iter().flatten() {
                println!(
                    "{:<40} {:>6} messages  {}",
                    account["address"].as_str().unwrap_or(""),
                    account["messages"].as_u64().unwrap_or(0),
                    letterbox::status::human_bytes(account["bytes"].as_u64().unwrap_or(0))
                );
            }
        }
        Request::AliasList => {
            for alias in data.as_array().into_iter().flatten() {
                println!(
                    "{} -> {}",
                    alias["address"].as_str().unwrap_or(""),
                    join(&alias["targets"])
                );
            }
        }
        Request::Button { .. } => println!("pressed {}", data["press"].as_str().unwrap_or("")),
        Request::Panel => println!("{data}"),
        Request::Setup { .. } => match data["mode"].as_str() {
            Some("setup") => println!("setup mode on"),
            Some("normal") => println!("setup mode off"),
            Some(other) => println!("mode: {other}"),
            None => println!("{data}"),
        },
        Request::QueueList => print_queue(data),
        Request::QueueFlush => println!(
            "{} recipients will be tried now",
            data["flushed"].as_u64().unwrap_or(0)
        ),
        Request::QueueDelete { .. } => {
            println!(
                "deleted queued message {}",
                data["id"].as_u64().unwrap_or(0)
            )
        }
        Request::Status => {
            match serde_json::from_value::<letterbox::status::Status>(data.clone()) {
                Ok(status) => print!("{}", status.render(letterbox::store::now_unix())),
                Err(_) => println!("{data}"),
            }
        }
    }
}

fn print_queue(data: &Value) {
    let now = letterbox::store::now_unix();
    let messages = data.as_array().map(Vec::as_slice).unwrap_or_default();
    if messages.is_empty() {
        println!("the queue is empty");
    }
    for message in messages {
        println!(
            "{:<6} {:<8} {:>10}  from <{}>",
            message["id"].as_u64().unwrap_or(0),
            letterbox::status::human_age(now - message["queued_at"].as_i64().unwrap_or(now)),
            letterbox::status::human_bytes(message["size"].as_u64().unwrap_or(0)),
            message["sender"].as_str().unwrap_or("")
        );
        for recipient in message["recipients"].as_array().into_iter().flatten() {
            let next = recipient["next_attempt"].as_i64().unwrap_or(0) - now;
            let next = if next > 0 {
                format!("next try in {}", letterbox::status::human_age(next))
            } else {
                "due now".to_string()
            };
            println!(
                "       to <{}>  {} attempts, {next}  {}",
                recipient["address"].as_str().unwrap_or(""),
                recipient["attempts"].as_u64().unwrap_or(0),
                recipient["last_error"].as_str().unwrap_or("")
            );
        }
    }
}

fn join(list: &Value) -> String {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn serve(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    if path.is_none() {
        println!(
            "letterbox: no config file, using development defaults (data in {}, domain {}, hostname {})",
            config.data_dir.display(),
            config.domains.join(", "),
            config.hostname
        );
    }
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signals.cancel();
    });
    let (reloader, changes) = letterbox::settings::Reloader::new(path);
    tokio::spawn(reload_on_hangup(reloader.clone()));
    letterbox::app::run(config, shutdown, reloader, changes).await?;
    Ok(())
}

/// SIGHUP: read the config file and the settings file again and hand the result to the
/// running services; a file with an error is reported and the running config stays.
async fn reload_on_hangup(reloader: letterbox::settings::Reloader) {
    use letterbox::settings::ReloadError;
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("no SIGHUP handler: settings apply at the next start");
        return;
    };
    while hangups.recv().await.is_some() {
        match reloader.reload().await {
            Ok(()) => {}
            Err(ReloadError::Stopped) => return,
            Err(error) => tracing::error!(%error, "SIGHUP: the running config stays"),
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
