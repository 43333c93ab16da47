//! The command line's grammar (clap): every subcommand and its options, as `--help` shows them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "letterbox",
    version,
    about = "A household mail box: SMTP, IMAP and POP3"
)]
pub struct Cli {
    /// Config file (TOML). Also from $LETTERBOX_CONFIG; without either, development defaults.
    #[arg(long, global = true, env = "LETTERBOX_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Check the box now: outgoing port 25, the published DNS records, reverse DNS,
    /// blocklists, the certificate. Each check says what to do.
    Health {
        #[arg(long)]
        json: bool,
    },
    /// Back up every account to the USB drive labelled LETTERBOX-BACKUP now (as every night).
    Backup,
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
    /// Write all mail (or one account's) as a tar of Maildir folders, while running or not.
    Export {
        /// Only this account (default: every account, each in a directory of its own).
        #[arg(long)]
        account: Option<String>,
        file: PathBuf,
    },
    /// Read a Maildir tar (as `export` writes it), a Maildir directory or an mbox file.
    Import {
        /// Put every message in this account (needed for an mbox file, or a tree that does
        /// not name its account).
        #[arg(long)]
        account: Option<String>,
        path: PathBuf,
    },
    /// What the panel shows now (as a PNG picture or as text), or what is on the I2C bus.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["png", "text", "probe"])))]
    Panel {
        /// Write the panel's picture to FILE (an OLED's pixels, or an LCD's glass).
        #[arg(long)]
        png: Option<PathBuf>,
        /// Each panel pixel (an LCD's dot: at least 2×2) becomes N×N picture pixels.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
        scale: u32,
        /// Print the screen as characters (the character LCD's rows; 20×4 for an OLED).
        #[arg(long)]
        text: bool,
        /// Scan the I2C bus and say what answers at which address.
        #[arg(long)]
        probe: bool,
        /// The bus to scan (default: the board's, or `[panel] i2c`).
        #[arg(long, requires = "probe")]
        bus: Option<PathBuf>,
    },
    /// The home Wi-Fi network's credentials.
    #[command(subcommand)]
    Wifi(WifiCommand),
    /// The learning content filter: teach it from sorted folders, or ask its opinion.
    #[command(subcommand)]
    Spam(SpamCommand),
}

#[derive(Subcommand)]
pub enum SpamCommand {
    /// Learn Maildir folders, directories of messages or mbox files as spam and as ham (a
    /// cold start; the daemon may be running). Each message is learned once.
    #[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["spam", "ham"])))]
    Train {
        #[arg(long, value_name = "DIR")]
        spam: Vec<PathBuf>,
        #[arg(long, value_name = "DIR")]
        ham: Vec<PathBuf>,
    },
    /// Score messages (files, Maildir folders, directories, mbox files): one line each,
    /// "probability<TAB>spam|ham<TAB>file<TAB>strongest clues".
    Classify {
        /// Above this a message is called spam.
        #[arg(long, default_value_t = letterbox::spam::DEFAULT_SPAM_THRESHOLD)]
        threshold: f64,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum WifiCommand {
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
    /// Store the network name and passphrase of a letterbox-wifi.txt (from the SD card's
    /// boot partition) in the data directory, then overwrite and delete the file.
    Import { file: PathBuf },
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Every value in effect and where it came from: default, config file or settings file.
    Show,
}

#[derive(Subcommand)]
pub enum QueueCommand {
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
pub enum UserCommand {
    /// Add an account; the password is read from the first line of standard input.
    Add {
        address: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The account may use the admin page.
        #[arg(long)]
        admin: bool,
        /// The most mail the account may hold, e.g. 2GiB (no limit without it).
        #[arg(long, value_parser = letterbox::units::parse_size)]
        quota: Option<u64>,
    },
    /// Set the most mail an account may hold (e.g. 2GiB), or `none` for no limit.
    Quota { address: String, quota: String },
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
pub enum AliasCommand {
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
