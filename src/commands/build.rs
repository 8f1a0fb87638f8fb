//! `dlx build`: flags -> request -> tier plan -> packages (Debian archive, or a
//! local directory) -> assembled image -> engine / OCI layout / tar / registry.
//! stdout gets the image ID (when written somewhere) and the pushed
//! `REF@digest` (when pushed), one per line, and nothing else.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::apt;
use crate::build::{self, Add, Debs, Plan, Request, Variant};
use crate::cli::BuildArgs;
use crate::deb::Deb;
use crate::exit::ExitStatus;
use crate::oci::layout;
use crate::output;

/// Where the image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    Docker,
    OciDir(PathBuf),
    Tar(PathBuf),
}

impl Output {
    fn parse(text: &str) -> anyhow::Result<Output> {
        if text == "docker" {
            return Ok(Output::Docker);
        }
        match text.split_once(':') {
            Some(("oci", dir)) if !dir.is_empty() => Ok(Output::OciDir(dir.into())),
            Some(("tar", file)) if !file.is_empty() => Ok(Output::Tar(file.into())),
            _ => bail!("invalid --output {text}\nhint: use docker, oci:DIR or tar:FILE"),
        }
    }
}

/// The Debian architecture of the host.
fn host_arch() -> anyhow::Result<String> {
    match build::tree::host_arch() {
        Some(arch) => Ok(arch.to_string()),
        None => bail!(
            "no Debian architecture known for host {}\nhint: pass --arch",
            std::env::consts::ARCH
        ),
    }
}

/// `["a","b"]` as JSON, or a single word.
fn command_list(flag: &str, text: &str) -> anyhow::Result<Vec<String>> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
            .with_context(|| format!("invalid --{flag} {text}: expected a JSON array of strings"))
    } else {
        Ok(vec![text.to_string()])
    }
}

fn request(args: &BuildArgs) -> anyhow::Result<Request> {
    let (tier, variant) = match args.spec.split_once(':') {
        Some((tier, variant)) => (tier, Variant::parse(variant)?),
        None => (args.spec.as_str(), Variant::Latest),
    };
    let arch = match &args.arch {
        Some(arch) => arch.clone(),
        None => host_arch()?,
    };
    let adds = args
        .add
        .iter()
        .map(|spec| Add::parse(spec))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Request {
        tier: tier.to_string(),
        variant,
        distro: args.distro.clone(),
        arch,
        adds,
        entrypoint: args
            .entrypoint
            .as_deref()
            .map(|e| command_list("entrypoint", e))
            .transpose()?,
        cmd: args
            .cmd
            .as_deref()
            .map(|c| command_list("cmd", c))
            .transpose()?,
        env: args.env.clone(),
    })
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitStatus> {
    let output = match (&args.output, &args.push) {
        (Some(text), _) => Some(Output::parse(text)?),
        (None, Some(_)) => None,
        (None, None) => Some(Output::Docker),
    };
    let push = args
        .push
        .as_deref()
        .map(crate::oci::push::Target::parse)
        .transpose()?;
    let request = request(&args)?;
    let mut plan = Plan::new(request)?;
    let reference = args.tag.clone().unwrap_or_else(|| plan.default_reference());
    let debs = match &args.deb_dir {
        Some(dir) => {
            if let Some(step) = plan.steps.iter().find(|s| s.tier.closure) {
                bail!(
                    "tier {} needs dependency resolution, which --deb-dir does not do\nhint: build it from the archive (drop --deb-dir)",
                    step.tier.name
                );
            }
            debs_from_dir(dir, &needed(&plan), &plan.request.arch)?
        }
        None => debs_from_archive(&args, &mut plan)?,
    };

    let spinner = spinner(format!("assembling {reference}"));
    // Layers made before from the same packages are reused; without a usable cache
    // directory they are made afresh.
    let layer_cache = build::layers::LayerCache::open(&apt::default_cache_dir())
        .inspect_err(|e| tracing::debug!(error = %e, "no layer cache"))
        .ok();
    let image = build::assemble_with(&plan, &debs, layer_cache.as_ref())?;
    if let Some(spinner) = &spinner {
        spinner.set_message(format!("writing {reference}"));
    }
    let encoded = match &output {
        None => image.encode()?,
        Some(Output::Docker) => {
            let mut tar = Vec::new();
            let encoded = layout::write_tar(&mut tar, Path::new("<engine>"), &image, &reference)?;
            crate::oci::load::load(tar, &reference)?;
            encoded
        }
        Some(Output::OciDir(dir)) => layout::write_dir(dir, &image, &reference)?,
        Some(Output::Tar(file)) => write_tar_file(file, &image, &reference)?,
    };
    let pushed = match &push {
        Some(target) => {
            if let Some(spinner) = &spinner {
                spinner.set_message(format!(
                    "pushing {}",
                    args.push.as_deref().unwrap_or_default()
                ));
            }
            Some(crate::oci::push::push(&image, &encoded, target)?)
        }
        None => None,
    };
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    if let Some(path) = &args.sbom {
        let doc = build::sbom::spdx(&plan, &debs, &encoded.config_digest, &reference);
        let mut text = serde_json::to_vec_pretty(&doc)?;
        text.push(b'\n');
        std::fs::write(path, text)
            .with_context(|| format!("failed to write the sbom {}", path.display()))?;
    }
    let size: usize = image.layers.iter().map(|l| l.blob.len()).sum();
    let place = match &output {
        Some(Output::Docker) => format!("loaded {reference}"),
        Some(Output::OciDir(dir)) => format!("wrote {reference} to oci:{}", dir.display()),
        Some(Output::Tar(file)) => format!("wrote {reference} to tar:{}", file.display()),
        None => "built".to_string(),
    };
    output::info(format!(
        "{place} ({} layers, {:.1} MiB compressed)",
        image.layers.len(),
        size as f64 / (1024.0 * 1024.0)
    ));
    if output.is_some() {
        println!("{}", encoded.config_digest);
    }
    if let Some(pushed) = pushed {
        output::info(format!("pushed {pushed}"));
        println!("{pushed}");
    }
    Ok(ExitStatus::Success)
}

fn spinner(message: String) -> Option<indicatif::ProgressBar> {
    if output::is_quiet() || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

/// Write the tar next to `file` and rename it into place.
fn write_tar_file(
    file: &Path,
    image: &crate::oci::Image,
    reference: &str,
) -> anyhow::Result<crate::oci::image::Encoded> {
    let tmp = file.with_extension("tar.partial");
    let out = std::fs::File::create(&tmp)
        .with_context(|| format!("failed to create {}", tmp.display()))?;
    let encoded = layout::write_tar(std::io::BufWriter::new(out), file, image, reference)?;
    std::fs::rename(&tmp, file)
        .with_context(|| format!("failed to move {} into place", file.display()))?;
    Ok(encoded)
}

/// Open `<name>_<version>_<arch|all>.deb` for each name from `dir`.
fn debs_from_dir(dir: &Path, names: &[String], arch: &str) -> anyhow::Result<Debs> {
    let listing = std::fs::read_dir(dir)
        .with_context(|| format!("failed to read --deb-dir {}", dir.display()))?;
    let mut files: Vec<String> = Vec::new();
    for entry in listing {
        let entry = entry.with_context(|| format!("failed to read --deb-dir {}", dir.display()))?;
        files.push(entry.file_name().to_string_lossy().into_owned());
    }
    let mut debs = HashMap::new();
    for name in names {
        if debs.contains_key(name) {
            continue;
        }
        let matches: Vec<&String> = files
            .iter()
            .filter(|f| {
                f.strip_prefix(name.as_str())
                    .and_then(|rest| rest.strip_prefix('_'))
                    .is_some_and(|rest| {
                        rest.ends_with(&format!("_{arch}.deb")) || rest.ends_with("_all.deb")
                    })
            })
            .collect();
        let file = match matches.as_slice() {
            [one] => dir.join(one),
            [] => bail!(
                "package {name} ({arch}) not found in {}\nhint: put {name}_<version>_{arch}.deb there",
                dir.display()
            ),
            many => bail!(
                "package {name} ({arch}) is ambiguous in {}: {}",
                dir.display(),
                many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
        };
        let deb = Deb::open(&file)?;
        if deb.package() != name {
            bail!(
                "{} holds package {}, not {name}",
                file.display(),
                deb.package()
            );
        }
        debs.insert(name.clone(), deb);
    }
    Ok(debs)
}

/// Every package the plan reads, layer packages first, without repeats.
fn needed(plan: &Plan) -> Vec<String> {
    let mut names = plan.layer_packages();
    names.extend(plan.source_packages());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// Packages from the signed Debian archive: open (verified indexes), honour or
/// write the lock, resolve closure tiers, select, fetch (verified), open.
fn debs_from_archive(args: &BuildArgs, plan: &mut Plan) -> anyhow::Result<Debs> {
    let distro: apt::Distro = plan.distro.id.parse()?;
    let cfg = apt::ArchiveConfig {
        mirror: args.mirror.clone().unwrap_or_else(apt::default_mirror),
        security_mirror: None,
        distro,
        arch: plan.request.arch.clone(),
        cache_dir: apt::default_cache_dir(),
        progress: !output::is_quiet() && std::io::stderr().is_terminal(),
        extra_keys: Vec::new(),
    };
    let mut archive = apt::Archive::open(cfg)?;
    let existing_lock = args.lock.as_ref().filter(|path| path.exists());
    if let Some(path) = existing_lock {
        archive = archive.with_lock(apt::Lock::read(path)?);
    }
    for at in 0..plan.steps.len() {
        if plan.steps[at].tier.closure {
            let roots = plan.steps[at].packages.clone();
            let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
            let resolved = archive.resolve(&roots).with_context(|| {
                format!(
                    "failed to resolve the packages of tier {}",
                    plan.steps[at].tier.name
                )
            })?;
            let mut stop: HashSet<String> = plan.steps[..at]
                .iter()
                .flat_map(|s| s.packages.iter().cloned())
                .collect();
            let distro_part = plan.steps[at].tier.for_distro(plan.distro.id)?;
            stop.extend(distro_part.exclude.iter().cloned());
            let kept = apt::resolve::prune(
                &resolved,
                &plan.steps[at].packages,
                &stop,
                &plan.request.arch,
            )?;
            plan.set_packages(at, kept);
        }
    }
    let names = needed(plan);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let packages = archive.select(&refs)?;
    let paths = archive.fetch(&packages)?;
    if let (Some(path), None) = (&args.lock, existing_lock) {
        archive.lock_for(&packages).write(path)?;
        output::info(format!("wrote lock {}", path.display()));
    }
    let mut debs = HashMap::new();
    for (package, path) in packages.iter().zip(paths) {
        let deb = Deb::open(&path)?;
        if deb.package() != package.name || deb.version() != package.version {
            bail!(
                "{} holds {} {}, the index promised {} {}",
                path.display(),
                deb.package(),
                deb.version(),
                package.name,
                package.version
            );
        }
        debs.insert(package.name.clone(), deb);
    }
    Ok(debs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse() {
        assert_eq!(Output::parse("docker").unwrap(), Output::Docker);
        assert_eq!(
            Output::parse("oci:/x").unwrap(),
            Output::OciDir("/x".into())
        );
        assert_eq!(
            Output::parse("tar:a.tar").unwrap(),
            Output::Tar("a.tar".into())
        );
        assert!(Output::parse("oci:").is_err());
        assert!(Output::parse("zip:x").is_err());
    }

    #[test]
    fn command_lists() {
        assert_eq!(command_list("cmd", "/app").unwrap(), ["/app"]);
        assert_eq!(command_list("cmd", r#"["/a","-x"]"#).unwrap(), ["/a", "-x"]);
        assert!(command_list("cmd", "[oops").is_err());
    }
}
