//! The config parser: `Config::parse` never panics on any text, and every refusal names the
//! file and a line that exists (the operator is told where to look).
//!
//! Input: the whole input, as UTF-8 (other bytes are replaced), is the config file.
#![no_main]

use letterbox::config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text, "fuzz.toml") {
        Ok(_) => {}
        Err(ConfigError::Invalid { path, line, reason }) => {
            assert_eq!(path, "fuzz.toml");
            // One past the last line: an error at the very end of a file ending in a newline.
            assert!(line >= 1 && line <= text.lines().count() + 1, "{line}");
            assert!(!reason.is_empty());
        }
        Err(error) => panic!("parse cannot fail to read: {error}"),
    }
});
