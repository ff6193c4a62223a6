//! The end of a server's log, for error messages.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How many lines of a log an error reports.
pub(crate) const LOG_TAIL_LINES: usize = 20;

/// The last [`LOG_TAIL_LINES`] lines of the file at `path` (empty if it cannot be read).
pub(crate) fn log_tail(path: &Path) -> String {
    tail(&read_from(path, 0), LOG_TAIL_LINES)
}

/// The file's contents from `offset` on (empty if it cannot be read).
pub(crate) fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path)
        && file.seek(SeekFrom::Start(offset)).is_ok()
    {
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_ok() {
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    text
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
