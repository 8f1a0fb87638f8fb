//! Package relation fields (`Depends`, `Pre-Depends`, `Provides`, ...): a comma-separated
//! list of groups, each group `|`-separated alternatives, each alternative
//! `name[:archqual] [(op version)] [[arch ...]] [<profile ...>]`.

use std::cmp::Ordering;
use std::fmt;

use super::version;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RelationError {
    #[error("cannot parse relation {text:?}: {reason}")]
    Parse { text: String, reason: &'static str },
}

/// A version operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }

    /// Whether `candidate OP wanted` holds.
    pub fn holds(self, candidate: &str, wanted: &str) -> bool {
        let ord = version::compare(candidate, wanted);
        match self {
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Eq => ord == Ordering::Equal,
            Op::Ge => ord != Ordering::Less,
            Op::Gt => ord == Ordering::Greater,
        }
    }
}

/// One alternative: a package name with optional qualifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    /// `any`, `native` or an arch name after `:`.
    pub arch_qualifier: Option<String>,
    pub version: Option<(Op, String)>,
    /// `[amd64 arm64]` or `[!armhf]`; empty when absent.
    pub arches: Vec<String>,
}

impl Dependency {
    /// Whether this alternative applies on `arch` (arch restriction lists).
    pub fn applies_to(&self, arch: &str) -> bool {
        if self.arches.is_empty() {
            return true;
        }
        let negated = self.arches.iter().all(|a| a.starts_with('!'));
        if negated {
            !self.arches.iter().any(|a| &a[1..] == arch)
        } else {
            self.arches.iter().any(|a| a == arch || a == "any")
        }
    }

    /// Whether a package (or provided name) at `version` satisfies the version part.
    /// `None` is an unversioned provide, which satisfies only unversioned relations.
    pub fn accepts(&self, version: Option<&str>) -> bool {
        match (&self.version, version) {
            (None, _) => true,
            (Some((op, want)), Some(have)) => op.holds(have, want),
            (Some(_), None) => false,
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(q) = &self.arch_qualifier {
            write!(f, ":{q}")?;
        }
        if let Some((op, v)) = &self.version {
            write!(f, " ({} {v})", op.as_str())?;
        }
        if !self.arches.is_empty() {
            write!(f, " [{}]", self.arches.join(" "))?;
        }
        Ok(())
    }
}

/// A list of groups; each group is satisfied by any one of its alternatives.
pub type Relations = Vec<Vec<Dependency>>;

/// Parse a relation field. An empty field is an empty list.
pub fn parse(text: &str) -> Result<Relations, RelationError> {
    let mut groups = Vec::new();
    for group in text.split(',') {
        let group = group.trim();
        if group.is_empty() {
            // Trailing commas occur in the wild; an empty group is not a relation.
            continue;
        }
        let alts = group
            .split('|')
            .map(|alt| parse_one(alt.trim(), text))
            .collect::<Result<Vec<_>, _>>()?;
        groups.push(alts);
    }
    Ok(groups)
}

fn parse_one(s: &str, whole: &str) -> Result<Dependency, RelationError> {
    let err = |reason| RelationError::Parse {
        text: whole.to_string(),
        reason,
    };
    let name_end = s
        .find(|c: char| c.is_whitespace() || c == '(' || c == '[' || c == '<')
        .unwrap_or(s.len());
    let (name, qual) = match s[..name_end].split_once(':') {
        Some((n, q)) => (n, Some(q.to_string())),
        None => (&s[..name_end], None),
    };
    if name.is_empty() {
        return Err(err("empty package name"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
    {
        return Err(err("invalid package name"));
    }
    let mut rest = s[name_end..].trim_start();
    let mut version = None;
    let mut arches = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('(') {
            let end = r.find(')').ok_or_else(|| err("unclosed '('"))?;
            let inner = r[..end].trim();
            let op_len = inner
                .find(|c: char| !"<=>".contains(c))
                .ok_or_else(|| err("missing version"))?;
            let op = Op::parse(&inner[..op_len]).ok_or_else(|| err("unknown operator"))?;
            let v = inner[op_len..].trim();
            if v.is_empty() {
                return Err(err("missing version"));
            }
            version = Some((op, v.to_string()));
            rest = r[end + 1..].trim_start();
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| err("unclosed '['"))?;
            arches = r[..end].split_whitespace().map(str::to_string).collect();
            rest = r[end + 1..].trim_start();
        } else if let Some(r) = rest.strip_prefix('<') {
            // Build profiles only matter for source packages; skip them.
            let end = r.find('>').ok_or_else(|| err("unclosed '<'"))?;
            rest = r[end + 1..].trim_start();
        } else {
            return Err(err("unexpected text after package name"));
        }
    }
    Ok(Dependency {
        name: name.to_string(),
        arch_qualifier: qual,
        version,
        arches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups_alternatives_and_qualifiers() {
        let r = parse("a (>= 1) | b:any, c [amd64]").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].len(), 2);
        assert_eq!(r[0][0].name, "a");
        assert_eq!(r[0][0].version, Some((Op::Ge, "1".to_string())));
        assert_eq!(r[0][1].name, "b");
        assert_eq!(r[0][1].arch_qualifier.as_deref(), Some("any"));
        assert_eq!(r[1][0].name, "c");
        assert_eq!(r[1][0].arches, vec!["amd64"]);
        assert!(r[1][0].applies_to("amd64"));
        assert!(!r[1][0].applies_to("arm64"));
    }

    #[test]
    fn parses_real_fields() {
        let r =
            parse("libc6 (>= 2.34), libzstd1 (>= 1.5.5), debconf (>= 0.5) | debconf-2.0").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[2][1].name, "debconf-2.0");
        assert_eq!(r[2][1].version, None);
        let r = parse("libgcc-s1 (>=3.0),foo(<<2:1.0~rc1-1)").unwrap();
        assert_eq!(r[0][0].version, Some((Op::Ge, "3.0".into())));
        assert_eq!(r[1][0].version, Some((Op::Lt, "2:1.0~rc1-1".into())));
        let r = parse("x [!armhf !i386] <!nocheck>").unwrap();
        assert!(r[0][0].applies_to("amd64"));
        assert!(!r[0][0].applies_to("armhf"));
        assert_eq!(parse("").unwrap(), Relations::new());
        assert_eq!(
            r[0][0].to_string(),
            "x [!armhf !i386]",
            "display round-trips the parts that matter"
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "a (>= 1",
            "a (~ 1)",
            "a (>=)",
            "a b",
            "A",
            "a | , b [amd64",
            "| b",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must not parse");
        }
    }

    #[test]
    fn version_constraints() {
        let d = &parse("a (>= 1.0~rc1)").unwrap()[0][0];
        assert!(d.accepts(Some("1.0~rc1")));
        assert!(d.accepts(Some("1.0")));
        assert!(!d.accepts(Some("1.0~beta")));
        assert!(!d.accepts(None), "an unversioned provide never satisfies");
        let d = &parse("a (<< 2)").unwrap()[0][0];
        assert!(!d.accepts(Some("1:0")));
        assert!(d.accepts(Some("1.9")));
    }
}
