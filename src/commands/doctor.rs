//! `dlx doctor TARGET`: gather, judge, print (see `crate::doctor`).

use anyhow::Result;

use crate::cli::DoctorArgs;
use crate::doctor;
use crate::engine::Docker;
use crate::exit::ExitStatus;
use crate::output;
use crate::settings::TargetSpec;

pub fn run(args: DoctorArgs) -> Result<ExitStatus> {
    let spec: TargetSpec = args.target.parse()?;
    let host = doctor::gather_host();
    let env = |k: &str| std::env::var(k).ok();
    let target = doctor::gather_target(&spec, &host, || {
        Docker::connect(
            env("DOCKER_HOST").as_deref(),
            env("DOCKER_API_VERSION").as_deref(),
        )
    });
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
