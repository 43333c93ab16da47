//! The one piece that talks to wpa_supplicant: a Unix datagram socket bound to a path of our
//! own (wpa_supplicant answers to the sender's address, so the client needs one) and
//! connected to the interface's control socket. Replies and events arrive on it in order;
//! events that come while a request waits are kept for [`Ctrl::next_event`].

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::net::UnixDatagram;

use super::WpaError;
use super::proto::{self, Event, Request};
use crate::limits::{WPA_CTRL_EVENTS, WPA_CTRL_MESSAGE_MAX, WPA_CTRL_REPLY_TIMEOUT};

/// Makes each client socket's path unique within the process.
static NEXT_CLIENT: AtomicU32 = AtomicU32::new(0);

pub struct Ctrl {
    socket: UnixDatagram,
    local: PathBuf,
    events: VecDeque<Event>,
}

impl Ctrl {
    /// Connects to wpa_supplicant's socket `server`; the client's own socket goes in
    /// `client_dir` (removed again when the `Ctrl` is dropped).
    pub fn open(server: &Path, client_dir: &Path) -> Result<Ctrl, WpaError> {
        let local = client_dir.join(format!(
            "letterbox-wpa-{}-{}",
            std::process::id(),
            NEXT_CLIENT.fetch_add(1, Ordering::Relaxed)
        ));
        // A socket left by an earlier process with the same id would make bind fail.
        let _ = std::fs::remove_file(&local);
        let socket = UnixDatagram::bind(&local).map_err(|e| WpaError::Socket {
            path: local.clone(),
            error: e.to_string(),
        })?;
        let ctrl = Ctrl {
            socket,
            local,
            events: VecDeque::new(),
        };
        ctrl.socket.connect(server).map_err(|e| WpaError::Socket {
            path: server.to_path_buf(),
            error: e.to_string(),
        })?;
        Ok(ctrl)
    }

    /// Sends `request` and returns its reply, keeping the events that arrive before it.
    pub async fn request(&mut self, request: &Request) -> Result<String, WpaError> {
        let line = request.encode();
        self.socket
            .send(line.as_bytes())
            .await
            .map_err(|e| WpaError::Io(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + WPA_CTRL_REPLY_TIMEOUT;
        loop {
            let message = tokio::time::timeout_at(deadline, self.receive())
                .await
                .map_err(|_| WpaError::NoReply(command_name(&line)))??;
            match proto::parse_event(&message) {
                Some(event) => self.keep(event),
                None => return Ok(message),
            }
        }
    }

    /// The next event, waiting at most `within`; `None` when none came.
    pub async fn next_event(&mut self, within: Duration) -> Result<Option<Event>, WpaError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(Some(event));
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let Ok(message) = tokio::time::timeout_at(deadline, self.receive()).await else {
                return Ok(None);
            };
            // A stray reply (to a request that timed out earlier) is not an event: skip it.
            if let Some(event) = proto::parse_event(&message?) {
                return Ok(Some(event));
            }
        }
    }

    async fn receive(&self) -> Result<String, WpaError> {
        let mut buffer = vec![0u8; WPA_CTRL_MESSAGE_MAX + 1];
        let length = self
            .socket
            .recv(&mut buffer)
            .await
            .map_err(|e| WpaError::Io(e.to_string()))?;
        buffer.truncate(length.min(WPA_CTRL_MESSAGE_MAX));
        // Names in replies are escaped to ASCII (printf_encode); anything else is lossy here.
        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }

    fn keep(&mut self, event: Event) {
        if self.events.len() == WPA_CTRL_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

impl Drop for Ctrl {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.local);
    }
}

/// The request's first word, for an error message (never its values: a PSK is one).
fn command_name(line: &str) -> String {
    line.split(' ').next().unwrap_or(line).to_string()
}
