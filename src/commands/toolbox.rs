//! `dlx toolbox`: show the default toolbox (text or JSON on stdout), or assemble it
//! ahead of an incident (`fetch`: its directory on stdout, progress on a terminal).

use std::fmt::Write as _;

use anyhow::Result;

use crate::cli::ToolboxArgs;
use crate::exit::ExitStatus;
use crate::output;
use crate::settings::{ToolboxAction, ToolboxSettings};
use crate::toolbox::{self, store::Installed};

pub fn run(args: ToolboxArgs) -> Result<ExitStatus> {
    let settings = ToolboxSettings::resolve(args)?;
    match settings.action {
        ToolboxAction::Show { json } => {
            let (installed, stale) = toolbox::current(&settings.options)?;
            if stale {
                output::notice(
                    "this toolbox was made by another dlx version; `dlx toolbox fetch` replaces it",
                );
            }
            let text = if json {
                json_text(&installed, stale)?
            } else {
                show(&installed)
            };
            print!("{text}");
        }
        ToolboxAction::Fetch => {
            let fetched = toolbox::fetch(&settings.options)?;
            let d = &fetched.installed.description;
            let what = if fetched.assembled {
                "assembled"
            } else {
                "up to date:"
            };
            output::info(format!(
                "{what} toolbox sha256:{} ({} tools, {} applets, {}) in {}",
                d.digest,
                d.tools.len(),
                d.applets.len(),
                mib(d.size),
                fetched.installed.root.display()
            ));
            for tree in &fetched.removed {
                output::info(format!(
                    "removed the unused toolbox tree {}",
                    tree.display()
                ));
            }
            println!("{}", fetched.installed.root.display());
        }
    }
    Ok(ExitStatus::Success)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `toolbox.json` plus where the tree is and whether it is stale.
fn json_text(installed: &Installed, stale: bool) -> Result<String> {
    let mut value = serde_json::to_value(&installed.description)?;
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "root".into(),
            installed.root.to_string_lossy().into_owned().into(),
        );
        map.insert("stale".into(), stale.into());
    }
    Ok(format!("{}\n", serde_json::to_string_pretty(&value)?))
}

/// `words` as lines of at most `width` columns (longer words alone), each indented.
fn wrap(words: &[String], indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in words {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

/// The human description.
fn show(installed: &Installed) -> String {
    let d = &installed.description;
    let mut out = String::new();
    let _ = writeln!(out, "toolbox   {}", installed.root.display());
    let _ = writeln!(out, "digest    sha256:{}", d.digest);
    let _ = writeln!(out, "distro    {} ({})", d.distro, d.arch);
    let _ = writeln!(out, "mount     {} (tools in {})", d.mount, d.bin);
    let _ = writeln!(out, "size      {}", mib(d.size));
    if let (Some(loader), Some(preload)) = (&d.loader, &d.preload) {
        let _ = writeln!(
            out,
            "loader    {loader} (reads {preload}, never /etc/ld.so.preload)"
        );
    }
    if let Some(guard) = &d.guard {
        let _ = writeln!(
            out,
            "guard     {guard} (the loader loads nothing outside {})",
            toolbox::LIB
        );
    }
    let _ = writeln!(out, "tools");
    let width = d
        .tools
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0)
        .max(7);
    for t in &d.tools {
        let linkage = serde_json::to_value(t.linkage)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:width$}  {} {} ({linkage})",
            t.name, t.package, t.version
        );
    }
    let busybox = d
        .packages
        .iter()
        .find(|p| p.name.contains("busybox"))
        .map(|p| format!("{} {}", p.name, p.version))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {:width$}  {busybox} (static, {} applets)",
        "busybox",
        d.applets.len()
    );
    let _ = writeln!(out, "applets");
    out.push_str(&wrap(&d.applets, "  ", 80));
    let _ = writeln!(out, "libraries");
    out.push_str(&wrap(&d.libraries, "  ", 80));
    let _ = writeln!(out, "packages");
    let width = d.packages.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &d.packages {
        let _ = writeln!(
            out,
            "  {:width$}  {} ({}, sha256:{})",
            p.name, p.version, p.suite, p.sha256
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn lists_wrap_at_the_width() {
        let words: Vec<String> = ["aaaa", "bbbb", "cccc", "dddddddddddd"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            wrap(&words, "  ", 13),
            "  aaaa bbbb\n  cccc\n  dddddddddddd\n"
        );
        assert_eq!(wrap(&[], "  ", 13), "");
    }
}
