//! The REPL's pager. A `table` result (or backslash command output) taller
//! than the terminal goes through `$PAGER`, default `less -FRSX` (quit if
//! it fits one screen, keep colours, chop long lines instead of wrapping,
//! leave the text on screen); `PAGER=` (empty) or `\pset pager off` prints
//! directly. Scripts, other formats, a `\o` file and a stdout that is not
//! a terminal never page. If the pager cannot start, the result is printed
//! directly with a warning.

use std::io::Write;
use std::process::{Command, Stdio};

pub const DEFAULT: &str = "less -FRSX";

/// Rows of the terminal on stdout; `None` when stdout is not a terminal.
pub fn terminal_rows() -> Option<usize> {
    terminal_size::terminal_size_of(std::io::stdout()).map(|(_, h)| h.0 as usize)
}

/// The pager command: `$PAGER`, or [`DEFAULT`]; `None` when `PAGER` is empty.
pub fn command() -> Option<String> {
    match std::env::var("PAGER") {
        Ok(p) if p.trim().is_empty() => None,
        Ok(p) => Some(p),
        Err(_) => Some(DEFAULT.to_string()),
    }
}

/// Whether `text` needs more rows than the terminal has, keeping two for
/// the footer and the next prompt.
pub fn too_tall(text: &[u8], rows: usize) -> bool {
    text.iter().filter(|b| **b == b'\n').count() + 2 > rows
}

/// Runs `command` through `sh -c` with `text` on its standard input and
/// waits for it. A pager quit early (broken pipe) is not an error.
pub fn page(text: &[u8], command: &str) -> std::io::Result<()> {
    let mut child = Command::new("sh").arg("-c").arg(command).stdin(Stdio::piped()).spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        match stdin.write_all(text) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e),
            _ => {}
        }
    }
    let status = child.wait()?;
    if status.code() == Some(127) {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "command not found"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_only_what_does_not_fit() {
        assert!(!too_tall(b"a\nb\nc\n", 5));
        assert!(too_tall(b"a\nb\nc\nd\n", 5));
    }

    #[test]
    fn pager_gets_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("paged.txt");
        page(b"one\ntwo\n", &format!("cat > '{}'", file.display())).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "one\ntwo\n");
        // A pager that does not read all its input (quit early) is fine.
        page(&vec![b'x'; 1 << 20], "true").unwrap();
        assert!(page(b"x", "no-such-pager-dp").is_err());
    }
}
