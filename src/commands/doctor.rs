//! `dlx doctor TARGET`: gather, judge, print (see `crate::doctor`).

use anyhow::Result;

use crate::cli::DoctorArgs;
use crate::doctor;
use crate::engine::{self, Cgroups};
use crate::exit::ExitStatus;
use crate::output;
use crate::settings::{self, TargetSpec};
use crate::target;

pub fn run(args: DoctorArgs) -> Result<ExitStatus> {
    let spec: TargetSpec = args.target.parse()?;
    let host = doctor::gather_host();
    let env = |k: &str| std::env::var(k).ok();
    let endpoints = settings::endpoints(&env);
    let cgroups = Cgroups::new();
    let sources = target::Sources {
        selection: settings::select_engine(&args.target, None, false)?,
        connect: &|kind| engine::connect(kind, &endpoints),
        cgroups: &cgroups,
        notice: &|s| output::notice(s),
    };
    let target = doctor::gather_target(&spec, &host, &sources);
    let label = match &target.resolved {
        Ok(r) => r.label(),
        Err(_) => args.target.clone(),
    };
    let checks = doctor::checks(&host, &target);
    output::data(doctor::render(&checks, &label).as_bytes())?;
    Ok(if doctor::passes(&checks) {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
