//! dlx: debug shell-less ("distroless") containers safely, and build distroless
//! images straight from Debian's signed archive.
//!
//! # Tour
//!
//! Edge: [`cli`] (clap structs) → [`settings`] (typed settings) → [`commands`] (one
//! pipeline per verb, returning an [`exit::ExitStatus`]); [`output`] talks to the
//! operator on stderr, [`logging`] sets up tracing.
//!
//! `dlx exec` flows through: [`target`] (name/ID/prefix/`pid:N` → host PID, via an
//! [`engine`]: Docker, Podman, containerd, or the host's cgroups) → [`pin`] (pidfd +
//! validation through `/proc/<pid>`, with [`cgroup`] and [`ns`]) → [`identity`] (the container's own passwd/group) → [`launch`] (the
//! privileged entry sequence, ending in a small launcher, `launch/launcher.c`,
//! compiled by `build.rs`, that starts the command) → [`session`] (stdio and signal relay, exit status).
//!
//! `dlx build` flows through: [`apt`] (the verified Debian archive client: keys →
//! InRelease → Packages → .deb, cache, lock) → [`deb`] (reading packages) →
//! [`build`] (tier data, generated files, image assembly) → [`oci`] (deterministic
//! layers, OCI layout, tar, engine load, push).
//!
//! [`toolbox`] assembles the tools a session finds at `/.dlx` (BusyBox, ss, ip,
//! tcpdump, strace, curl, lsof) from Debian's packages through [`apt`], cached by
//! digest, with a loader guard (`toolbox/guard.c`, compiled by `build.rs`) that keeps
//! the container's code out of its tools, and checks an operator's own
//! `--toolbox DIR`.
//!
//! `dlx ps` asks every [`engine`] for its running containers and looks at each
//! image from the inside with [`survey`] (shell, distroless tier).
//!
//! The responder's kit: [`doctor`] (why entering would fail, and what helps),
//! [`fanout`] (one command in many containers, each its own `dlx exec`), [`audit`]
//! (one JSON line per session), and `dlx completions` / `dlx man` generated from
//! [`cli`].
//!
//! Every kernel side effect goes through [`sys`], the only module allowed `unsafe`.

pub mod apt;
pub mod audit;
pub mod build;
pub mod cgroup;
pub mod cli;
pub mod commands;
pub mod deb;
pub mod doctor;
pub mod engine;
pub mod exit;
pub mod fanout;
pub mod handover;
pub mod identity;
pub mod launch;
pub mod logging;
pub mod ns;
pub mod oci;
pub mod output;
pub mod pin;
pub mod session;
pub mod settings;
pub mod survey;
pub mod sys;
pub mod target;
pub mod toolbox;
