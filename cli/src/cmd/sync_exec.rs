//! `ferry sync exec`: runs a command under a sync lease. The command gets the
//! integration's credential (in an environment variable, or a private file it names) only
//! when integration-control grants the lease, and is stopped (SIGTERM, then SIGKILL after
//! a grace period) the moment a renewal is refused: any sync script or cron job wrapped
//! this way is fenced with no change of its own.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ferry_proto::integration::v1 as pb;
use tokio::process::Child;
use tokio::time::Instant;
use tonic::Code;
use tonic_types::StatusExt;

use crate::client::Session;
use crate::error::Exit;
use crate::parse::names;

/// Exit status when the lease was never granted (as `ferry sync check`'s denial).
pub const DENIED_EXIT: u8 = super::sync::DENIED_EXIT;
/// Exit status when the command was stopped because the lease ended (as timeout(1)'s).
pub const STOPPED_EXIT: u8 = 124;

/// Run COMMAND while holding a sync lease on a mapping; stop it when the lease ends.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The mapping: ENV/INTEGRATION/MAPPING or its full name.
    #[arg(value_parser = names::mapping_path)]
    mapping: String,
    /// The sync job that syncs (an id in the mapping's environment, or a full name).
    #[arg(long)]
    job: Option<String>,
    /// How long the lease lasts unrenewed, in seconds (5 to 600); renewed every third of it.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=600))]
    ttl_secs: u64,
    /// The environment variable that carries the API key.
    #[arg(long, default_value = "FERRY_SYNC_API_KEY")]
    key_env: String,
    /// Write the API key to a private file (mode 0600, removed after) and pass its path in
    /// `<KEY_ENV>_FILE` instead of the key itself.
    #[arg(long)]
    key_file: bool,
    /// Seconds between SIGTERM and SIGKILL when the command is stopped.
    #[arg(long, default_value_t = 10)]
    grace_secs: u64,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<String>,
}

/// Every failing check of a refusal: "KIND subject: description".
fn reasons(status: &tonic::Status) -> String {
    let violations = status.get_details_precondition_failure().map(|p| p.violations).unwrap_or_default();
    if violations.is_empty() {
        return status.message().to_owned();
    }
    violations.iter().map(|v| format!("{} {}: {}", v.r#type, v.subject, v.description)).collect::<Vec<_>>().join("; ")
}

/// A refusal for good: no use trying again with this lease.
fn refused(status: &tonic::Status) -> bool {
    matches!(status.code(), Code::FailedPrecondition | Code::NotFound | Code::PermissionDenied | Code::InvalidArgument)
}

/// The API key in a private file, removed when dropped.
struct KeyFile(PathBuf);

impl KeyFile {
    fn write(key: &str) -> anyhow::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = std::env::temp_dir().join(format!("ferry-sync-{}.key", hex::encode(rand::random::<[u8; 12]>())));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating the key file {}", path.display()))?;
        let kept = Self(path);
        file.write_all(key.as_bytes()).context("writing the key file")?;
        Ok(kept)
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The command's exit status as this process's: its code, or 128 + the signal that ended it.
fn status_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        (None, None) => 1,
    }
}

/// Stops `child`: SIGTERM, then SIGKILL when it has not exited after `grace`.
async fn stop(child: &mut Child, grace: Duration) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        child.kill().await.context("killing the command")?;
    }
    Ok(())
}

fn expiry(lease: &pb::SyncLease) -> Instant {
    let left_micros = lease.expire_time.as_ref().map_or(0, ferry_kit::db::micros) - ferry_kit::db::now_micros();
    Instant::now() + Duration::from_micros(left_micros.max(0) as u64)
}

pub async fn run(s: &Session, a: ExecArgs) -> anyhow::Result<()> {
    let mut ic = s.integration()?;
    let env = a.mapping.split('/').nth(1).unwrap_or_default().to_owned();
    let ttl = Duration::from_secs(a.ttl_secs);
    let ttl_pb = Some(prost_types::Duration { seconds: a.ttl_secs as i64, nanos: 0 });
    let req = pb::AcquireSyncLeaseRequest {
        mapping: a.mapping.clone(),
        job: a.job.as_deref().map(|j| names::sync_job(&env, j)).unwrap_or_default(),
        ttl: ttl_pb,
        request_id: crate::parse::request_id(),
    };
    let mut lease = match ic.acquire_sync_lease(req).await {
        Ok(r) => r.into_inner(),
        Err(st) if st.code() == Code::FailedPrecondition => {
            let message = format!("no sync lease on {}: {}", a.mapping, reasons(&st));
            return Err(Exit { code: DENIED_EXIT, message }.into());
        }
        Err(st) => return Err(anyhow::Error::from(st).context(format!("acquiring a sync lease on {}", a.mapping))),
    };
    let credential = lease.credential.take().context("integration-control granted a lease without its credential")?;
    let name = lease.name.clone();
    let key_file = if a.key_file { Some(KeyFile::write(&credential.api_key)?) } else { None };
    let mut command = tokio::process::Command::new(&a.command[0]);
    command
        .args(&a.command[1..])
        .env("FERRY_SYNC_LEASE", &name)
        .env("FERRY_SYNC_MAPPING", &lease.mapping)
        .env("FERRY_SYNC_INTEGRATION", &credential.integration)
        .env("FERRY_SYNC_BASE_URL", &credential.base_url)
        .kill_on_drop(true);
    match &key_file {
        Some(f) => command.env(format!("{}_FILE", a.key_env), &f.0),
        None => command.env(&a.key_env, &credential.api_key),
    };
    drop(credential);
    let release = |ic: &mut crate::client::Integration| {
        let name = name.clone();
        let mut ic = ic.clone();
        async move {
            if let Err(e) = ic.release_sync_lease(pb::ReleaseSyncLeaseRequest { name: name.clone() }).await {
                eprintln!("ferry sync exec: releasing {name}: {}", e.message());
            }
        }
    };
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            release(&mut ic).await;
            return Err(anyhow::Error::from(e).context(format!("running {}", a.command[0])));
        }
    };
    let every = (ttl / 3).max(Duration::from_secs(1));
    let mut expires = expiry(&lease);
    let mut next = Instant::now() + every;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).context("SIGINT handler")?;
    let stopped_because = loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.context("waiting for the command")?;
                release(&mut ic).await;
                drop(key_file);
                return match status_code(status) {
                    0 => Ok(()),
                    code => Err(Exit { code, message: String::new() }.into()),
                };
            }
            _ = tokio::time::sleep_until(next.min(expires)) => {
                if Instant::now() >= expires {
                    break format!("{name} expired: it could not be renewed in time");
                }
                match ic.renew_sync_lease(pb::RenewSyncLeaseRequest { name: name.clone(), ttl: ttl_pb }).await {
                    Ok(r) => {
                        lease = r.into_inner();
                        expires = expiry(&lease);
                        next = Instant::now() + every;
                    }
                    Err(st) if refused(&st) => break reasons(&st),
                    // Unreachable for now: try again soon, until the lease would expire.
                    Err(st) => {
                        eprintln!("ferry sync exec: renewing {name}: {} ({}); trying again", st.message(), ferry_kit::status::code_name(st.code()));
                        next = Instant::now() + Duration::from_secs(1);
                    }
                }
            }
            _ = terminate.recv() => stop(&mut child, Duration::from_secs(a.grace_secs)).await?,
            _ = interrupt.recv() => stop(&mut child, Duration::from_secs(a.grace_secs)).await?,
        }
    };
    stop(&mut child, Duration::from_secs(a.grace_secs)).await?;
    release(&mut ic).await;
    drop(key_file);
    Err(Exit { code: STOPPED_EXIT, message: format!("stopped {}: {stopped_because}", a.command[0]) }.into())
}
