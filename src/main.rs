//! The `letterbox` command: the daemon and its operator interface (DESIGN.md).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use letterbox::admin::{self, Admin, Request, Response};
use letterbox::config::Config;
use letterbox::recent_log::RecentLog;
use letterbox::settings::Layered;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

mod cli {
    pub mod commands;
    pub mod output;
}

use cli::commands::{
    AliasCommand, Cli, Command, ConfigCommand, QueueCommand, SpamCommand, UserCommand, WifiCommand,
};
use cli::output::print_response;

/// rustls warns once per handshake whose SNI is an IP address or malformed, which any
/// scanner can repeat thousands of times a minute; the handshake goes on (or fails with its
/// own error), so these say nothing an operator can act on (issue #16 defect 6).
const RUSTLS_HANDSHAKE: &str = "rustls::msgs::handshake";

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run) {
        end_quietly_on_a_closed_pipe();
    }
    // The log goes to stderr at the level RUST_LOG asks for; INFO and above also to the
    // admin page's recent lines.
    let recent_log = RecentLog::default();
    {
        use tracing_subscriber::Layer;
        use tracing_subscriber::filter::{LevelFilter, Targets};
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // A fixed, valid directive: parsing it cannot fail.
        if let Ok(quiet) = format!("{RUSTLS_HANDSHAKE}=error").parse() {
            filter = filter.add_directive(quiet);
        }
        let stderr = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter);
        let recent = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(recent_log.clone())
            .with_filter(
                Targets::new()
                    .with_default(LevelFilter::INFO)
                    .with_target(RUSTLS_HANDSHAKE, LevelFilter::ERROR),
            );
        tracing_subscriber::registry()
            .with(stderr)
            .with(recent)
            .init();
    }
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
    match runtime.block_on(run(cli, recent_log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("letterbox: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so a command printing into a pipe that closed (`letterbox queue list
/// | head`) got an error from `println!` and panicked with a backtrace. The commands end the
/// way Unix tools do instead: quietly, by the signal. The daemon (`run`) keeps it ignored: a
/// client that goes away is an error on its socket, not the end of the mail box.
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: resets one signal's disposition to the default, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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

async fn run(cli: Cli, recent_log: RecentLog) -> anyhow::Result<()> {
    // The config file with the settings the setup page wrote laid over it.
    let layered = Layered::load(cli.config.as_deref())?;
    let config = layered.config.clone();
    let (request, json) = match cli.command {
        Command::Run => return serve(config, cli.config, recent_log).await,
        Command::User(UserCommand::Add {
            address,
            admin,
            quota,
            ..
        }) => (
            Request::UserAdd {
                address,
                administrator: admin,
                quota,
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
        Command::User(UserCommand::Quota { address, quota }) => {
            let quota = match quota.as_str() {
                "none" => None,
                size => Some(letterbox::units::parse_size(size).map_err(anyhow::Error::msg)?),
            };
            (Request::UserQuota { address, quota }, false)
        }
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
            print!(
                "{}",
                letterbox::outbound::records::dns_records(&config, &dkim)
            );
            return Ok(());
        }
        Command::Health { json } => (Request::Health, json),
        Command::Backup => (Request::Backup, false),
        Command::Button { press } => {
            let press = serde_json::from_value(Value::String(press))?;
            (Request::Button { press }, false)
        }
        Command::Setup { off } => (Request::Setup { on: !off }, false),
        Command::Config(ConfigCommand::Show) => {
            print!("{}", layered.show());
            return Ok(());
        }
        Command::Panel {
            png,
            scale,
            text,
            probe,
            bus,
        } => {
            if probe {
                return probe_bus(&config, bus);
            }
            if text {
                return print_panel_text(&config).await;
            }
            let png = png.context("--png FILE, --text or --probe")?;
            return write_panel(&config, &png, scale).await;
        }
        Command::Export { account, file } => (
            Request::Export {
                path: std::path::absolute(&file)
                    .with_context(|| format!("cannot use {}", file.display()))?,
                account,
            },
            false,
        ),
        Command::Import { account, path } => (
            Request::Import {
                path: std::path::absolute(&path)
                    .with_context(|| format!("cannot use {}", path.display()))?,
                account,
            },
            false,
        ),
        Command::Wifi(WifiCommand::Join { ssid, .. }) => (
            Request::WifiJoin {
                ssid,
                passphrase: read_password()?,
            },
            false,
        ),
        Command::Wifi(WifiCommand::Scan) => return wifi_scan(&config).await,
        Command::Wifi(WifiCommand::Status { json }) => return wifi_status(&config, json).await,
        Command::Wifi(WifiCommand::Import { file }) => return wifi_import(&config, &file),
        Command::Spam(SpamCommand::Train { spam, ham }) => (
            Request::SpamTrain {
                spam: absolute_paths(&spam)?,
                ham: absolute_paths(&ham)?,
            },
            false,
        ),
        Command::Spam(SpamCommand::Classify { threshold, paths }) => {
            return spam_classify(&config, threshold, absolute_paths(&paths)?).await;
        }
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

fn absolute_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    paths
        .iter()
        .map(|p| std::path::absolute(p).with_context(|| format!("cannot use {}", p.display())))
        .collect()
}

/// `letterbox spam classify`: through the running daemon if there is one; else straight on
/// the store, each line printed as it is scored (thousands of messages are never held).
async fn spam_classify(config: &Config, threshold: f64, paths: Vec<PathBuf>) -> anyhow::Result<()> {
    let print = |scored: letterbox::spam::ClassifiedFile| {
        let verdict = if scored.probability > threshold {
            "spam"
        } else {
            "ham"
        };
        println!(
            "{:.6}\t{verdict}\t{}\t{}",
            scored.probability,
            scored.path,
            scored.reasons.join(", ")
        );
    };
    let request = Request::SpamClassify {
        paths: paths.clone(),
    };
    if let Some(answer) = admin::send(&config.data_dir, &request).await {
        let response = answer.context("the daemon's control socket did not answer properly")?;
        if !response.ok {
            bail!("{}", response.error.unwrap_or_default());
        }
        let scored: Vec<letterbox::spam::ClassifiedFile> = serde_json::from_value(response.data)?;
        scored.into_iter().for_each(print);
        return Ok(());
    }
    // The store alone: scoring needs no accounts (the account layer's start-up costs more
    // memory than the classifier).
    let status = tokio::sync::watch::channel(letterbox::status::Status::default()).0;
    let store = letterbox::store::Store::open(&config.data_dir, &config.limits, status)?;
    let classifier = letterbox::spam::Classifier::new(store);
    letterbox::spam::classify_files(&classifier, &paths, &mut |scored| print(scored)).await?;
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
        health: None,
        backup: None,
    };
    Ok(admin.execute(request.clone()).await)
}

async fn write_panel(config: &Config, path: &std::path::Path, scale: u32) -> anyhow::Result<()> {
    let response = execute(config, &Request::Panel).await?;
    if !response.ok {
        bail!("{}", response.error.unwrap_or_default());
    }
    if response.data["kind"] == "hd44780" {
        // A character LCD: a picture of its glass, not of an OLED it does not have.
        let screen =
            letterbox::panel::text_of_picture(&response.data).map_err(anyhow::Error::msg)?;
        let png = letterbox::panel::lcd_picture::to_png(&screen, scale)?;
        std::fs::write(path, png).with_context(|| format!("cannot write {}", path.display()))?;
        println!(
            "wrote {} ({} character panel, scale {})",
            path.display(),
            screen.size(),
            scale.max(2)
        );
        return Ok(());
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

async fn print_panel_text(config: &Config) -> anyhow::Result<()> {
    let response = execute(config, &Request::Panel).await?;
    if !response.ok {
        bail!("{}", response.error.unwrap_or_default());
    }
    print!("{}", response.data["text"].as_str().unwrap_or_default());
    Ok(())
}

/// `letterbox panel --probe`: straight on the bus, daemon or not (the kernel takes turns).
fn probe_bus(config: &Config, bus: Option<PathBuf>) -> anyhow::Result<()> {
    let bus = match bus.or_else(|| config.panel.i2c.clone()) {
        Some(bus) => bus,
        None => match letterbox::board::resolve(
            &config.board,
            &config.panel,
            &config.button,
            std::path::Path::new(letterbox::board::DEVICE_TREE_MODEL),
        )? {
            letterbox::board::Hardware::Board(board) => board.panel.i2c,
            letterbox::board::Hardware::Simulated { .. } => {
                bail!("no board and no I2C bus: give --bus /dev/i2c-N (or set board)")
            }
        },
    };
    let mut i2c = linux_embedded_hal::I2cdev::new(&bus)
        .with_context(|| format!("cannot open {}", bus.display()))?;
    let scan = letterbox::panel::probe::scan(&mut i2c);
    print!(
        "{}",
        letterbox::panel::probe::report(&bus.display().to_string(), &scan)
    );
    Ok(())
}

/// `letterbox wifi scan`: asks the backend itself (a scan does not disturb the daemon's radio;
/// `join` goes to the daemon's control loop instead, `Request::WifiJoin`).
async fn wifi_scan(config: &Config) -> anyhow::Result<()> {
    for heard in letterbox::network::from_config(config).scan().await? {
        let lock = if heard.secured { "" } else { "  (open)" };
        println!("{:>3} %  {}{lock}", heard.signal_percent, heard.ssid);
    }
    Ok(())
}

/// `letterbox wifi status`: the link as the backend reports it.
async fn wifi_status(config: &Config, json: bool) -> anyhow::Result<()> {
    let link = letterbox::network::from_config(config).link().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&link)?);
    } else {
        match link {
            Some(link) => println!("{}", link.describe()),
            None => println!("not joined to a Wi-Fi network"),
        }
    }
    Ok(())
}

/// `letterbox wifi import FILE`: the boot partition's letterbox-wifi.txt into the data
/// directory.
fn wifi_import(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    use letterbox::network::credentials::{Imported, import_boot_file};
    match import_boot_file(file, &config.data_dir)? {
        Imported::Stored { ssid } => {
            println!("stored Wi-Fi network {ssid:?}; {} deleted", file.display())
        }
        Imported::Absent => println!("{}: no such file", file.display()),
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

async fn serve(config: Config, path: Option<PathBuf>, recent_log: RecentLog) -> anyhow::Result<()> {
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
    letterbox::app::run(config, shutdown, reloader, changes, recent_log).await?;
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
