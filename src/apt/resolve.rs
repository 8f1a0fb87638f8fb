//! Package selection over the merged indexes of a distro's suites.
//!
//! Every name has one candidate: its highest version across all suites (ties go to the
//! earlier suite, i.e. the release before updates before security). [`Index::select`]
//! takes an exact list of names with no dependencies, as the core distroless tiers do.
//! [`Index::resolve`] adds the closure over `Pre-Depends` and `Depends`: a group already
//! satisfied by a chosen package is skipped; otherwise alternatives are tried left to right
//! and the first resolvable one wins; a name with no real package that satisfies the
//! relation falls back to packages that `Provides` it (a real package of that name always
//! wins). `Recommends`, `Suggests`, `Conflicts` and `Breaks` are not consulted.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

use super::packages::{Entry, IndexError, Package};
use super::relation::{self, Dependency, RelationError};
use super::table::{self, Table};
use super::version;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("package {name} is not in the {scope}\nhint: check the spelling; `apt-cache policy {name}` on a debian host shows where it lives")]
    Unknown { name: String, scope: String },
    #[error("cannot satisfy {package} {version}'s dependency {relation} in the {scope}")]
    Unsatisfiable {
        package: String,
        version: String,
        relation: String,
        scope: String,
    },
    #[error("package {name} is needed at {wanted} but {chosen} was already chosen")]
    Conflict {
        name: String,
        chosen: String,
        wanted: String,
    },
    #[error(transparent)]
    Record(#[from] IndexError),
    #[error("package {package} {version} has an unreadable {field} field: {source}")]
    Relation {
        package: String,
        version: String,
        field: &'static str,
        #[source]
        source: RelationError,
    },
}

/// A provided name: who provides it and at which version (unversioned when `None`).
#[derive(Debug, Clone)]
struct Provider {
    name: String,
    version: Option<String>,
    priority: u8,
}

/// All packages of a set of suites, by name: built from entries (every name up front),
/// or over package tables, where a name's entries are made the first time it is looked
/// up (see [`Index::from_tables`]).
#[derive(Debug, Clone, Default)]
pub struct Index {
    /// Candidates per name, highest version first.
    by_name: HashMap<String, Vec<Entry>>,
    /// Provided name → providers (only the chosen version of each package provides).
    provides: HashMap<String, Vec<Provider>>,
    /// Package tables in suite order, with a name's entries once looked up.
    tables: Arc<Tables>,
    /// Words for error messages, e.g. "debian13 amd64 index (trixie, ...)".
    scope: String,
}

/// Package tables, and per table and record a slot for the entries of the name whose
/// first record (in the first table listing the name) it is.
#[derive(Debug, Default)]
struct Tables {
    list: Vec<Arc<Table>>,
    memo: Vec<Vec<OnceLock<Vec<Entry>>>>,
}

fn priority_rank(priority: Option<&str>) -> u8 {
    match priority {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") => 3,
        _ => 4,
    }
}

/// Stable: equal versions keep suite order.
fn sort_versions(v: &mut [Entry]) {
    v.sort_by(|a, b| version::compare(&b.version, &a.version));
}

/// By priority, then name (stable).
fn sort_providers(v: &mut [Provider]) {
    v.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then_with(|| a.name.cmp(&b.name))
    });
}

impl Index {
    /// Build from index entries listed in suite order (earlier suites win version ties).
    pub fn new(entries: impl IntoIterator<Item = Entry>, scope: String) -> Index {
        let mut by_name: HashMap<String, Vec<Entry>> = HashMap::new();
        for e in entries {
            match by_name.get_mut(&e.name) {
                Some(v) => v.push(e),
                None => {
                    by_name.insert(e.name.clone(), vec![e]);
                }
            }
        }
        for v in by_name.values_mut().filter(|v| v.len() > 1) {
            sort_versions(v);
        }
        let mut provides: HashMap<String, Vec<Provider>> = HashMap::new();
        for cands in by_name.values() {
            let best = &cands[0];
            let Some(text) = &best.provides else {
                continue;
            };
            // A malformed Provides only loses that package's virtual names.
            let Ok(rels) = relation::parse(text) else {
                tracing::debug!(package = %best.name, "unreadable Provides ignored");
                continue;
            };
            for dep in rels.into_iter().flatten() {
                provides.entry(dep.name).or_default().push(Provider {
                    name: best.name.clone(),
                    version: dep.version.map(|(_, v)| v),
                    priority: priority_rank(best.priority.as_deref()),
                });
            }
        }
        for v in provides.values_mut() {
            sort_providers(v);
        }
        Index {
            by_name,
            provides,
            tables: Arc::default(),
            scope,
        }
    }

    /// Build over package tables listed in suite order (earlier suites win version
    /// ties). Nothing is read up front: a name's entries are made when it is first
    /// looked up, and a paragraph is read when its record is asked for. Selection
    /// answers exactly as [`Index::new`] over the same paragraphs.
    pub fn from_tables(tables: Vec<Table>, scope: String) -> Index {
        let list: Vec<Arc<Table>> = tables.into_iter().map(Arc::new).collect();
        let memo = list
            .iter()
            .map(|t| (0..t.len()).map(|_| OnceLock::new()).collect())
            .collect();
        Index {
            by_name: HashMap::new(),
            provides: HashMap::new(),
            tables: Arc::new(Tables { list, memo }),
            scope,
        }
    }

    /// Build from full records (a lock's packages, tests).
    pub fn from_packages(packages: &[Package], scope: String) -> Index {
        Index::new(packages.iter().map(Entry::from_package), scope)
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The chosen version of `name`: the highest across suites.
    pub fn candidate(&self, name: &str) -> Option<&Entry> {
        self.versions(name).first()
    }

    /// Every version of `name` in the index, highest first.
    pub fn versions(&self, name: &str) -> &[Entry] {
        if let Some(v) = self.by_name.get(name) {
            return v;
        }
        let tables = &self.tables;
        for (i, t) in tables.list.iter().enumerate() {
            let found = t.find(name);
            if found.is_empty() {
                continue;
            }
            return tables.memo[i][found.start].get_or_init(|| {
                // Earlier tables lack the name; later ones may list other versions.
                let mut v: Vec<Entry> = tables.list[i..]
                    .iter()
                    .flat_map(|t| table::entries(t, name))
                    .collect();
                sort_versions(&mut v);
                v
            });
        }
        &[]
    }

    /// Providers of the virtual name `name`, by priority then name.
    fn providers(&self, name: &str) -> Cow<'_, [Provider]> {
        if let Some(v) = self.provides.get(name) {
            return Cow::Borrowed(v);
        }
        let mut out = Vec::new();
        for t in &self.tables.list {
            for r in t.providers(name) {
                // Only the chosen version of a package provides.
                let chosen = self
                    .candidate(t.name(r))
                    .is_some_and(|best| best.is_record(t, r));
                let Some(text) = t.provides_field(r).filter(|_| chosen) else {
                    continue;
                };
                let Ok(rels) = relation::parse(text) else {
                    continue;
                };
                for dep in rels.into_iter().flatten().filter(|d| d.name == name) {
                    out.push(Provider {
                        name: t.name(r).to_string(),
                        version: dep.version.map(|(_, v)| v),
                        priority: priority_rank(t.priority(r)),
                    });
                }
            }
        }
        sort_providers(&mut out);
        Cow::Owned(out)
    }

    /// Number of distinct package names.
    pub fn len(&self) -> usize {
        let tables = &self.tables.list;
        let mut n = self.by_name.len();
        for (i, t) in tables.iter().enumerate() {
            n += match i {
                0 => t.names(),
                _ => (0..t.len())
                    .filter(|&r| r == 0 || t.name(r - 1) != t.name(r))
                    .filter(|&r| tables[..i].iter().all(|e| e.find(t.name(r)).is_empty()))
                    .count(),
            };
        }
        n
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The exact packages named, in the order given; no dependencies.
    pub fn select(&self, names: &[&str]) -> Result<Vec<Package>, ResolveError> {
        names
            .iter()
            .map(|n| {
                Ok(self
                    .candidate(n)
                    .ok_or_else(|| self.unknown(n))?
                    .package()?)
            })
            .collect()
    }

    fn unknown(&self, name: &str) -> ResolveError {
        ResolveError::Unknown {
            name: name.to_string(),
            scope: self.scope.clone(),
        }
    }

    /// A package satisfying `dep`: the highest real version that fits, else the first
    /// provider (by priority, then name) whose provided version fits.
    fn pick(&self, dep: &Dependency) -> Option<&Entry> {
        if let Some(p) = self
            .versions(&dep.name)
            .iter()
            .find(|p| dep.accepts(Some(&p.version)))
        {
            return Some(p);
        }
        self.providers(&dep.name)
            .iter()
            .filter(|prov| dep.accepts(prov.version.as_deref()))
            .find_map(|prov| self.candidate(&prov.name))
    }

    /// The named packages and everything they Pre-Depend or Depend on, for `arch`,
    /// sorted by name. A name with no real package resolves through its providers.
    pub fn resolve(&self, names: &[&str], arch: &str) -> Result<Vec<Package>, ResolveError> {
        let mut chosen: BTreeMap<String, Package> = BTreeMap::new();
        // Provided name → versions provided by chosen packages.
        let mut provided: HashMap<String, Vec<Option<String>>> = HashMap::new();
        let mut queue = VecDeque::new();

        let add = |p: &Package,
                   chosen: &mut BTreeMap<String, Package>,
                   provided: &mut HashMap<String, Vec<Option<String>>>,
                   queue: &mut VecDeque<Package>|
         -> Result<(), ResolveError> {
            if let Some(have) = chosen.get(&p.name) {
                if have.version != p.version {
                    return Err(ResolveError::Conflict {
                        name: p.name.clone(),
                        chosen: have.version.clone(),
                        wanted: p.version.clone(),
                    });
                }
                return Ok(());
            }
            if let Some(text) = p.paragraph.get("Provides") {
                let rels = relation::parse(text).map_err(|source| ResolveError::Relation {
                    package: p.name.clone(),
                    version: p.version.clone(),
                    field: "Provides",
                    source,
                })?;
                for d in rels.into_iter().flatten() {
                    provided
                        .entry(d.name)
                        .or_default()
                        .push(d.version.map(|(_, v)| v));
                }
            }
            chosen.insert(p.name.clone(), p.clone());
            queue.push_back(p.clone());
            Ok(())
        };

        for name in names {
            let dep = Dependency {
                name: name.to_string(),
                arch_qualifier: None,
                version: None,
                arches: Vec::new(),
            };
            let p = self.pick(&dep).ok_or_else(|| self.unknown(name))?;
            add(&p.package()?, &mut chosen, &mut provided, &mut queue)?;
        }

        while let Some(pkg) = queue.pop_front() {
            for field in ["Pre-Depends", "Depends"] {
                let Some(text) = pkg.paragraph.get(field) else {
                    continue;
                };
                let groups = relation::parse(text).map_err(|source| ResolveError::Relation {
                    package: pkg.name.clone(),
                    version: pkg.version.clone(),
                    field,
                    source,
                })?;
                for group in groups {
                    let alts: Vec<&Dependency> =
                        group.iter().filter(|d| d.applies_to(arch)).collect();
                    if alts.is_empty() {
                        continue;
                    }
                    let satisfied = alts.iter().any(|d| {
                        chosen
                            .get(&d.name)
                            .is_some_and(|p| d.accepts(Some(&p.version)))
                            || provided
                                .get(&d.name)
                                .is_some_and(|vs| vs.iter().any(|v| d.accepts(v.as_deref())))
                    });
                    if satisfied {
                        continue;
                    }
                    let Some(p) = alts.iter().find_map(|d| self.pick(d)) else {
                        return Err(ResolveError::Unsatisfiable {
                            package: pkg.name.clone(),
                            version: pkg.version.clone(),
                            relation: alts
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(" | "),
                            scope: self.scope.clone(),
                        });
                    };
                    tracing::debug!(from = %pkg.name, picked = %p.name, version = %p.version, "dependency");
                    add(&p.package()?, &mut chosen, &mut provided, &mut queue)?;
                }
            }
        }
        Ok(chosen.into_values().collect())
    }
}

/// The part of a resolved closure reachable from `roots` without passing through
/// `stop` (packages installed elsewhere, or excluded because only maintainer scripts
/// need them), in the resolver's order.
pub fn prune(
    resolved: &[Package],
    roots: &[String],
    stop: &HashSet<String>,
    arch: &str,
) -> Result<Vec<String>, ResolveError> {
    let relations = |p: &Package, field: &'static str, text: &str| {
        relation::parse(text).map_err(|source| ResolveError::Relation {
            package: p.name.clone(),
            version: p.version.clone(),
            field,
            source,
        })
    };
    let by_name: HashMap<&str, &Package> = resolved.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut providers: HashMap<String, &str> = HashMap::new();
    for p in resolved {
        if let Some(text) = p.paragraph.get("Provides") {
            for d in relations(p, "Provides", text)?.into_iter().flatten() {
                providers.entry(d.name).or_insert(p.name.as_str());
            }
        }
    }
    let mut keep: HashSet<&str> = HashSet::new();
    let mut queue: Vec<&str> = Vec::new();
    for root in roots {
        if by_name.contains_key(root.as_str()) && keep.insert(root.as_str()) {
            queue.push(root.as_str());
        }
    }
    while let Some(name) = queue.pop() {
        let package = by_name[name];
        for field in ["Pre-Depends", "Depends"] {
            let Some(text) = package.paragraph.get(field) else {
                continue;
            };
            for group in relations(package, field, text)? {
                let target = group.iter().filter(|d| d.applies_to(arch)).find_map(|d| {
                    by_name
                        .get_key_value(d.name.as_str())
                        .map(|(k, _)| *k)
                        .or_else(|| providers.get(&d.name).copied())
                });
                let Some(target) = target else { continue };
                if stop.contains(target) || group.iter().any(|d| stop.contains(&d.name)) {
                    continue;
                }
                if keep.insert(target) {
                    queue.push(target);
                }
            }
        }
    }
    Ok(resolved
        .iter()
        .filter(|p| keep.contains(p.name.as_str()))
        .map(|p| p.name.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apt::packages;

    fn index(text: &str) -> Index {
        // Two "suites": the second paragraph set stands for updates.
        let mut all = Vec::new();
        for (i, part) in text.split("=====\n").enumerate() {
            let suite = if i == 0 { "trixie" } else { "trixie-updates" };
            all.extend(packages::parse(part, suite, "test").unwrap());
        }
        Index::from_packages(&all, "test index".into())
    }

    fn para(name: &str, version: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\n{extra}Filename: pool/{name}_{version}.deb\nSize: 1\nSHA256: {}\n\n",
            "0".repeat(64)
        )
    }

    fn names(p: &[Package]) -> Vec<String> {
        p.iter()
            .map(|p| format!("{}={}", p.name, p.version))
            .collect()
    }

    #[test]
    fn highest_version_across_suites_wins() {
        let ix = index(&format!(
            "{}{}=====\n{}",
            para("libc6", "2.41-12", ""),
            para("tzdata", "2025b-4", ""),
            para("libc6", "2.41-12+deb13u1", "")
        ));
        let sel = ix.select(&["tzdata", "libc6"]).unwrap();
        assert_eq!(names(&sel), ["tzdata=2025b-4", "libc6=2.41-12+deb13u1"]);
        assert_eq!(sel[1].suite, "trixie-updates");
        let e = ix.select(&["nope"]).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("package nope is not in the test index"));
    }

    #[test]
    fn closure_alternatives_virtuals_and_versions() {
        let ix = index(&format!(
            "{}{}{}{}{}{}{}{}",
            para("base-files", "13", "Pre-Depends: awk\n"),
            para("mawk", "1.3", "Provides: awk\nPriority: required\n"),
            para("gawk", "5", "Provides: awk\nPriority: optional\n"),
            para(
                "app",
                "1",
                "Depends: missing | libfoo (>= 2), libc6 (>= 2.36), tiny [arm64]\n"
            ),
            para("libfoo", "1", ""),
            para("libfoo-new", "2", "Provides: libfoo (= 2)\n"),
            para("libc6", "2.41", "Depends: libgcc-s1\nRecommends: nope\n"),
            para("libgcc-s1", "14", "Depends: libc6 (>= 2.35)\n"),
        ));
        let r = ix.resolve(&["base-files", "app"], "amd64").unwrap();
        assert_eq!(
            names(&r),
            [
                "app=1",
                "base-files=13",
                "libc6=2.41",
                "libfoo-new=2",
                "libgcc-s1=14",
                "mawk=1.3"
            ]
        );
        // The real package wins over a provider of the same name.
        let ix2 = index(&format!(
            "{}{}{}",
            para("x", "1", "Depends: awk\n"),
            para("awk", "1", ""),
            para("mawk", "1", "Provides: awk\nPriority: required\n"),
        ));
        assert_eq!(
            names(&ix2.resolve(&["x"], "amd64").unwrap()),
            ["awk=1", "x=1"]
        );
    }

    #[test]
    fn unsatisfiable_names_the_relation() {
        let ix = index(&para("app", "1", "Depends: libc6 (>= 9)\n"));
        let e = ix.resolve(&["app"], "amd64").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot satisfy app 1's dependency libc6 (>= 9) in the test index"
        );
    }
}
