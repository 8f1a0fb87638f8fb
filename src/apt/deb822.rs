//! deb822 control paragraphs (Release, Packages, `*.sources`): `Field: value` lines,
//! continuation lines starting with a space or tab, paragraphs separated by blank lines.
//! A [`Paragraph`] keeps every field in file order with its value exactly as written,
//! so it can be written back unchanged (the image's dpkg status needs the stanza).

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Deb822Error {
    #[error("{source_name}: line {line}: {reason}")]
    Parse {
        source_name: String,
        line: usize,
        reason: &'static str,
    },
}

/// One paragraph: fields in order. Multi-line values keep their continuation lines,
/// joined with `\n` and with the leading space of each continuation line kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Paragraph {
    fields: Vec<(String, String)>,
}

impl Paragraph {
    /// The value of a field (names are case-insensitive), first line trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Fields in file order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Lines of a multi-line field (the first line, then each continuation line trimmed).
    pub fn lines(&self, name: &str) -> Vec<&str> {
        self.get(name)
            .map(|v| v.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
            .unwrap_or_default()
    }
}

impl fmt::Display for Paragraph {
    /// The paragraph in deb822 form, each field on its own line(s), no trailing blank line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.fields {
            if v.starts_with('\n') || v.is_empty() {
                writeln!(f, "{k}:{v}")?;
            } else {
                writeln!(f, "{k}: {v}")?;
            }
        }
        Ok(())
    }
}

/// Parse every paragraph of `text`. `source_name` names the file in errors.
/// Comment lines (`#`) are skipped, as deb822 allows in sources files.
pub fn parse(text: &str, source_name: &str) -> Result<Vec<Paragraph>, Deb822Error> {
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let err = |reason| Deb822Error::Parse {
            source_name: source_name.to_string(),
            line: i + 1,
            reason,
        };
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            let (_, value) = cur
                .fields
                .last_mut()
                .ok_or_else(|| err("continuation line before any field"))?;
            value.push('\n');
            value.push_str(line);
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| err("expected `Field: value`"))?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(err("invalid field name"));
        }
        cur.fields
            .push((name.to_string(), value.trim().to_string()));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = concat!(
        "Package: base-files\n",
        "Version: 13.8\n",
        "Description: Debian base system miscellaneous files\n",
        " This package contains the basic filesystem hierarchy.\n",
        " .\n",
        " It also contains the Debian release.\n",
        "Conffiles:\n",
        " /etc/debian_version 0123\n",
        " /etc/issue 4567\n",
        "\n",
        "\n",
        "# a comment\n",
        "Package: netbase\r\n",
        "Version: 6.5\r\n",
    );

    #[test]
    fn paragraphs_fields_and_continuations() {
        let ps = parse(SAMPLE, "sample").unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("package"), Some("base-files"));
        assert_eq!(ps[0].get("VERSION"), Some("13.8"));
        let desc = ps[0].get("Description").unwrap();
        assert!(desc.starts_with("Debian base system miscellaneous files\n This package"));
        assert_eq!(desc.lines().count(), 4);
        assert_eq!(
            ps[0].lines("Conffiles"),
            vec!["/etc/debian_version 0123", "/etc/issue 4567"]
        );
        assert_eq!(ps[1].get("Version"), Some("6.5"));
        assert_eq!(ps[1].get("Missing"), None);
    }

    #[test]
    fn display_round_trips() {
        let ps = parse(SAMPLE, "sample").unwrap();
        let again = parse(&ps[0].to_string(), "again").unwrap();
        assert_eq!(again, vec![ps[0].clone()]);
        assert!(ps[0]
            .to_string()
            .contains("Conffiles:\n /etc/debian_version 0123\n"));
    }

    #[test]
    fn errors_name_source_and_line() {
        let e = parse("Package: a\n no-field-before\nbroken line\n", "Packages").unwrap_err();
        assert_eq!(e.to_string(), "Packages: line 3: expected `Field: value`");
        let e = parse(" x\n", "f").unwrap_err();
        assert!(e.to_string().contains("line 1"));
    }
}
