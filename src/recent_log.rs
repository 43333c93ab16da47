//! The last log lines, kept in memory for the admin page: at most `RECENT_LOG_LINES` lines of
//! at most `RECENT_LOG_LINE_MAX` bytes each, so the memory it takes is bounded however chatty
//! the daemon is. Only INFO and above are kept (the log itself may be at DEBUG); nothing
//! logged carries a secret (house rule 7), so the lines can be shown to the administrator.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::limits::{RECENT_LOG_LINE_MAX, RECENT_LOG_LINES};

#[derive(Clone, Default)]
pub struct RecentLog {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl RecentLog {
    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    fn push(&self, line: &str) {
        let line = line.trim_end();
        if line.is_empty() {
            return;
        }
        let mut end = line.len().min(RECENT_LOG_LINE_MAX);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let mut lines = self.lock();
        if lines.len() == RECENT_LOG_LINES {
            lines.pop_front();
        }
        lines.push_back(line[..end].to_string());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        // A panic while pushing a line leaves the queue whole.
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One event's formatted text; pushed as lines when the formatter is done with it.
pub struct EventWriter {
    log: RecentLog,
    text: Vec<u8>,
}

impl Write for EventWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // An event longer than a line is cut anyway; do not buffer more than that.
        let room = RECENT_LOG_LINE_MAX.saturating_sub(self.text.len());
        self.text.extend_from_slice(&bytes[..bytes.len().min(room)]);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.text);
        for line in text.lines() {
            self.log.push(line);
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RecentLog {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter {
            log: self.clone(),
            text: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_lines_are_kept_each_cut_to_size() {
        let log = RecentLog::default();
        for i in 0..RECENT_LOG_LINES + 10 {
            log.push(&format!("line {i}"));
        }
        let lines = log.lines();
        assert_eq!(lines.len(), RECENT_LOG_LINES);
        assert_eq!(lines[0], "line 10");
        log.push(&"é".repeat(RECENT_LOG_LINE_MAX));
        let last = log.lines().pop().expect("a line");
        assert!(last.len() <= RECENT_LOG_LINE_MAX && last.chars().all(|c| c == 'é'));
    }

    #[test]
    fn events_arrive_through_the_writer() {
        use tracing_subscriber::fmt::MakeWriter;
        let log = RecentLog::default();
        {
            let mut writer = log.make_writer();
            writer.write_all(b"first\nsecond\n").expect("write");
        }
        assert_eq!(log.lines(), ["first", "second"]);
    }
}
