//! Talking to the operator. stdout is data and is written only by the commands that
//! produce data; everything said to a person goes to stderr through here.

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by `-q`: notices, spinners and progress bars stay silent; errors still print.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Silence (or not) everything said to a person except errors.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `-q` was given.
pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Print `dlx: <message>` on stderr, followed by the error's causes and any hint.
///
/// Causes are joined with `: ` the way the anyhow chain reads; a line starting with
/// `hint:` anywhere in a cause is moved to its own line at the end.
pub fn error(err: &anyhow::Error) {
    let mut text = String::new();
    let mut hints = Vec::new();
    for (i, cause) in err.chain().enumerate() {
        let cause = cause.to_string();
        let (body, hint) = split_hint(&cause);
        if let Some(hint) = hint {
            hints.push(hint.to_string());
        }
        // anyhow contexts often repeat their source's text; skip exact repeats.
        if body.is_empty() || text.ends_with(body) {
            continue;
        }
        if i > 0 {
            text.push_str(": ");
        }
        text.push_str(body);
    }
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "dlx: {}", printable(&text));
    for hint in hints {
        let _ = writeln!(stderr, "hint: {}", printable(&hint));
    }
}

/// Print a one-line notice on stderr (`dlx: ...`), even under `-q`: for outcomes the
/// operator must see (a command that could not run).
pub fn notice(message: impl Display) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "dlx: {}",
        printable(&message.to_string())
    );
}

/// `text` with its control characters but newline and tab escaped (`\r`,
/// `\u{1b}`). What dlx says often quotes what a container chose (its `PATH`, its
/// working directory), which must not reach the operator's terminal as escape
/// sequences.
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return text.into();
    }
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect::<String>()
        .into()
}

/// Write a command's data to stdout. A reader that went away (`dlx man | head`) is
/// not an error: the data was for it alone.
pub fn data(bytes: &[u8]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Print a one-line status report on stderr (`dlx: ...`), such as what a build wrote;
/// `-q` silences it.
pub fn info(message: impl Display) {
    if !is_quiet() {
        notice(message);
    }
}

/// `message` (an error's text) without its `hint:` line: for saying what went wrong
/// in the middle of a sentence of dlx's own.
pub fn without_hint(message: &(impl Display + ?Sized)) -> String {
    split_hint(&message.to_string()).0.to_string()
}

/// Split `"text\nhint: do this"` into its body and hint.
fn split_hint(message: &str) -> (&str, Option<&str>) {
    match message.find("\nhint: ") {
        Some(at) => (message[..at].trim_end(), Some(&message[at + 7..])),
        None => (message, None),
    }
}

#[cfg(test)]
mod tests {
    use super::{printable, split_hint, without_hint};

    #[test]
    fn talk_shows_control_characters_escaped() {
        let plain = "plain: ok\nhint: two\tcols";
        assert_eq!(printable(plain), plain);
        assert_eq!(
            printable("PATH=/bin\u{1b}]0;pwned\u{7}\r:/x\u{9b}"),
            "PATH=/bin\\u{1b}]0;pwned\\u{7}\\r:/x\\u{9b}"
        );
    }

    #[test]
    fn hint_is_split_from_the_message() {
        assert_eq!(
            split_hint("no such container: web"),
            ("no such container: web", None)
        );
        assert_eq!(
            split_hint("container web is paused\nhint: run `docker unpause web`"),
            ("container web is paused", Some("run `docker unpause web`"))
        );
        assert_eq!(
            without_hint(&"engine hung\nhint: pass --no-engine"),
            "engine hung"
        );
    }
}
