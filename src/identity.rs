//! Who the command runs as: `USER[:GROUP]` resolved against the container's own
//! `/etc/passwd` and `/etc/group`, parsed by dlx itself.
//!
//! dlx never calls getpwnam(3): after entering the container NSS would load the
//! container's `libnss_*.so` into a host-privileged process (CVE-2019-14271). The
//! files are read from the host through the pinned root with in-root resolution, size
//! limited, and parsed here, following runc's rules (numeric IDs need no entry; a
//! user found in passwd gets its primary group, home and supplementary groups).

/// The resolved identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, primary group first, without duplicates.
    pub groups: Vec<u32>,
    /// Home directory, for `HOME` when the environment has none.
    pub home: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error(
        "no user {name:?} in the container's /etc/passwd\nhint: use a numeric uid, e.g. -u 65532"
    )]
    NoSuchUser { name: String },
    #[error("no group {name:?} in the container's /etc/group\nhint: use a numeric gid, e.g. -u 65532:65532")]
    NoSuchGroup { name: String },
    #[error("invalid user spec {spec:?}\nhint: use USER[:GROUP], names or numbers")]
    BadSpec { spec: String },
}

/// One `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].into(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].into(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].into(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// Resolve `spec` (`""` means root) against the container's passwd and group texts
/// (`None` when the file does not exist). `extra_groups` are the engine's GroupAdd.
pub fn resolve(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
    extra_groups: &[String],
) -> Result<User, IdentityError> {
    let users = passwd.map(parse_passwd).unwrap_or_default();
    let groups = group.map(parse_group).unwrap_or_default();
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() && group_part.is_some() || group_part == Some("") {
        return Err(IdentityError::BadSpec {
            spec: spec.to_string(),
        });
    }
    let user_part = if user_part.is_empty() { "0" } else { user_part };

    // The user: numeric needs no entry; a name must have one.
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => users.iter().find(|u| u.uid == uid).cloned().map(|mut e| {
            e.uid = uid;
            e
        }),
        Err(_) => Some(
            users
                .iter()
                .find(|u| u.name == user_part)
                .cloned()
                .ok_or_else(|| IdentityError::NoSuchUser {
                    name: user_part.to_string(),
                })?,
        ),
    };
    let uid = entry
        .as_ref()
        .map(|e| e.uid)
        .unwrap_or_else(|| user_part.parse().unwrap_or(0));
    let mut gid = entry.as_ref().map(|e| e.gid).unwrap_or(0);
    let home = entry
        .as_ref()
        .map(|e| e.home.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into());

    let lookup_group = |g: &str| -> Result<u32, IdentityError> {
        match g.parse::<u32>() {
            Ok(gid) => Ok(gid),
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| IdentityError::NoSuchGroup {
                    name: g.to_string(),
                }),
        }
    };
    if let Some(g) = group_part {
        gid = lookup_group(g)?;
    }

    // Supplementary groups, as docker sets them: the primary group, then (with no
    // explicit group) the user's memberships, then the engine's GroupAdd.
    let mut supplementary = vec![gid];
    if group_part.is_none() {
        if let Some(e) = &entry {
            supplementary.extend(
                groups
                    .iter()
                    .filter(|g| g.members.contains(&e.name))
                    .map(|g| g.gid),
            );
        }
    }
    for g in extra_groups {
        supplementary.push(lookup_group(g)?);
    }
    let mut seen = std::collections::BTreeSet::new();
    supplementary.retain(|g| seen.insert(*g));
    Ok(User {
        uid,
        gid,
        groups: supplementary,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
                          nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
    const GROUP: &str =
        "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:nonroot\nnonroot:x:65532:\n";

    fn r(spec: &str) -> Result<User, IdentityError> {
        resolve(spec, Some(PASSWD), Some(GROUP), &[])
    }

    #[test]
    fn default_is_root() {
        assert_eq!(
            r("").unwrap(),
            User {
                uid: 0,
                gid: 0,
                groups: vec![0],
                home: "/root".into()
            }
        );
    }

    #[test]
    fn names_come_from_passwd_with_groups() {
        let u = r("nonroot").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.groups, u.home.as_str()),
            (65532, 65532, vec![65532, 50], "/home/nonroot")
        );
    }

    #[test]
    fn numeric_ids_need_no_entry() {
        assert_eq!(
            r("1234").unwrap(),
            User {
                uid: 1234,
                gid: 0,
                groups: vec![0],
                home: "/".into()
            }
        );
        assert_eq!(r("1234:99").unwrap().gid, 99);
        assert_eq!(r("65532").unwrap().home, "/home/nonroot");
    }

    #[test]
    fn explicit_group_by_name_and_no_supplementary() {
        let u = r("nonroot:tty").unwrap();
        assert_eq!((u.gid, u.groups), (5, vec![5]));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            r("alice"),
            Err(IdentityError::NoSuchUser {
                name: "alice".into()
            })
        );
        assert_eq!(
            r("0:wheel"),
            Err(IdentityError::NoSuchGroup {
                name: "wheel".into()
            })
        );
        assert!(matches!(r("0:"), Err(IdentityError::BadSpec { .. })));
    }

    #[test]
    fn no_passwd_file_still_allows_numbers() {
        let u = resolve("65532:65532", None, None, &[]).unwrap();
        assert_eq!((u.uid, u.gid), (65532, 65532));
        assert!(resolve("nonroot", None, None, &[]).is_err());
    }

    #[test]
    fn group_add_is_appended() {
        let u = resolve(
            "nonroot",
            Some(PASSWD),
            Some(GROUP),
            &["tty".into(), "50".into()],
        )
        .unwrap();
        assert_eq!(u.groups, vec![65532, 50, 5]);
    }
}
