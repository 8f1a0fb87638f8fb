//! One table of exit codes for the whole program.
//!
//! `dlx exec` passes the command's own status through; dlx's own failures use the
//! codes `docker exec` uses, so scripts written for docker keep working.

/// How dlx ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked.
    Success,
    /// A check found a problem (`dlx doctor`): 1.
    Failure,
    /// dlx itself failed (no engine, no such container, permission, bad input): 125.
    Error,
    /// The command could not be executed (found, but not executable): 126.
    NotExecutable,
    /// The command was not found in the container: 127.
    NotFound,
    /// The command's own exit code, or 128+N when it was killed by signal N.
    External(u8),
}

impl ExitStatus {
    /// The numeric code handed to the operating system.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Error => 125,
            ExitStatus::NotExecutable => 126,
            ExitStatus::NotFound => 127,
            ExitStatus::External(code) => code,
        }
    }

    /// The status of a child that exited with `code`.
    pub fn exited(code: i32) -> Self {
        ExitStatus::External(u8::try_from(code & 0xff).unwrap_or(255))
    }

    /// The status of a child killed by signal `signal`: 128+N, docker's convention.
    pub fn signaled(signal: i32) -> Self {
        ExitStatus::External(u8::try_from(128 + (signal & 0x7f)).unwrap_or(255))
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_docker_conventions() {
        assert_eq!(ExitStatus::Success.code(), 0);
        assert_eq!(ExitStatus::Failure.code(), 1);
        assert_eq!(ExitStatus::Error.code(), 125);
        assert_eq!(ExitStatus::NotExecutable.code(), 126);
        assert_eq!(ExitStatus::NotFound.code(), 127);
        assert_eq!(ExitStatus::exited(7).code(), 7);
        assert_eq!(ExitStatus::exited(256 + 3).code(), 3);
        assert_eq!(ExitStatus::signaled(9).code(), 137);
        assert_eq!(ExitStatus::signaled(15).code(), 143);
    }
}
