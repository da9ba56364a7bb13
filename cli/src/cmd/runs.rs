//! One watch and render path for runs of every kind (refresh, promotion): follow a run
//! that was just started, draw its checklist live from the server's snapshots (titles
//! included), print it and turn how it ended into the exit code.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use ferry_proto::common::v1::ErrorStatus;
use ferry_proto::refresh::v1 as pb;
use futures::{Stream, StreamExt};

use crate::client::{Refresh, Session};
use crate::error::{Exit, Hint, job_status};
use crate::output::{self, Resource};
use crate::parse::id_of;
use crate::render::checklist::{Checklist, Frame, run_is_terminal, run_state_label};
use crate::render::rollback::rollback_frame;

/// A run as the watch path needs it.
pub(crate) trait Run: Resource + Sized + Send + 'static {
    /// The CLI command of the kind (`ferry refresh …`, `ferry promote …`).
    const COMMAND: &'static str;
    fn name(&self) -> &str;
    fn state(&self) -> i32;
    fn error(&self) -> Option<&ErrorStatus>;
    fn abort_reason(&self) -> &str;
    fn frame(&self) -> Frame;
    /// (number, state) of each step.
    fn steps(&self) -> Vec<(i32, i32)>;
    async fn get(client: &mut Refresh, name: String) -> Result<Self, tonic::Status>;
    async fn watch(client: &mut Refresh, name: String) -> Result<tonic::Streaming<Self>, tonic::Status>;
}

/// The accessors both run messages have under the same field names.
macro_rules! run_fields {
    () => {
        fn name(&self) -> &str {
            &self.name
        }
        fn state(&self) -> i32 {
            self.state
        }
        fn error(&self) -> Option<&ErrorStatus> {
            self.error.as_ref()
        }
        fn abort_reason(&self) -> &str {
            &self.abort_reason
        }
        fn steps(&self) -> Vec<(i32, i32)> {
            self.steps.iter().map(|s| (s.number, s.state)).collect()
        }
    };
}

impl Run for pb::RefreshRun {
    const COMMAND: &'static str = "refresh";
    run_fields!();
    fn frame(&self) -> Frame {
        Frame::refresh(self)
    }
    async fn get(client: &mut Refresh, name: String) -> Result<Self, tonic::Status> {
        Ok(client.get_refresh_run(pb::GetRefreshRunRequest { name }).await?.into_inner())
    }
    async fn watch(client: &mut Refresh, name: String) -> Result<tonic::Streaming<Self>, tonic::Status> {
        Ok(client.watch_refresh_run(pb::WatchRefreshRunRequest { name }).await?.into_inner())
    }
}

impl Run for pb::PromotionRun {
    const COMMAND: &'static str = "promote";
    run_fields!();
    fn frame(&self) -> Frame {
        Frame::promotion(self)
    }
    async fn get(client: &mut Refresh, name: String) -> Result<Self, tonic::Status> {
        Ok(client.get_promotion_run(pb::GetPromotionRunRequest { name }).await?.into_inner())
    }
    async fn watch(client: &mut Refresh, name: String) -> Result<tonic::Streaming<Self>, tonic::Status> {
        Ok(client.watch_promotion_run(pb::WatchPromotionRunRequest { name }).await?.into_inner())
    }
}

/// The number of the step `run` waits on, or an error saying it does not wait.
pub(crate) fn waiting_step<R: Run>(run: &R) -> anyhow::Result<i32> {
    run.steps()
        .into_iter()
        .find(|(_, st)| *st == pb::StepState::WaitingForConfirmation as i32)
        .map(|(n, _)| n)
        .with_context(|| format!("{} is {} and waits for no confirmation", run.name(), run_state_label(run.state())))
}

/// Prints a run that was just started (or retried), or watches it unless `no_wait`.
pub(crate) async fn follow<R: Run>(s: &Session, run: R, no_wait: bool, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    if no_wait {
        output::one(out, s.format, &run)?;
        return Ok(());
    }
    watch::<R>(s, run.name().to_owned(), out).await
}

/// Renders a run's checklist on stderr until it ends, prints it, and fails when it ends
/// FAILED or ABORTED.
pub(crate) async fn watch<R: Run>(s: &Session, name: String, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let mut client = s.refresh()?;
    let command = R::COMMAND;
    let stream = match R::watch(&mut client, name.clone()).await {
        Ok(stream) => stream,
        Err(e) => return Err(anyhow::Error::new(e).context(Hint(format!("look at the run with: ferry {command} get {}", id_of(&name))))),
    };
    let last = draw(stream, &format!("ferry {command} watch {}", id_of(&name))).await?;
    let run = match last {
        Some(run) if run_is_terminal(run.state()) => run,
        _ => R::get(&mut client, name.clone()).await?,
    };
    output::one(out, s.format, &run)?;
    outcome(&run)
}

/// Draws every snapshot of a run stream on stderr as a checklist until a terminal state;
/// returns the last snapshot.
async fn draw<R: Run, S>(mut stream: S, again: &str) -> anyhow::Result<Option<R>>
where
    S: Stream<Item = Result<R, tonic::Status>> + Unpin,
{
    let stderr = std::io::stderr();
    let mut checklist = Checklist::new(stderr.is_terminal());
    let mut last = None;
    while let Some(next) = stream.next().await {
        let run = next.map_err(|e| anyhow::Error::new(e).context(Hint(format!("the run goes on: {again}"))))?;
        if let Some(text) = checklist.frame(&run.frame()) {
            let mut err = stderr.lock();
            // The checklist is best effort: a closed stderr must not fail the command.
            let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
        }
        let ended = run_is_terminal(run.state());
        last = Some(run);
        if ended {
            break;
        }
    }
    Ok(last)
}

/// Ok unless the run ended FAILED (its error, as a gRPC status) or ABORTED; an error too
/// when it has not ended.
fn outcome<R: Run>(run: &R) -> anyhow::Result<()> {
    let (name, what) = (run.name(), R::COMMAND);
    let label = run_state_label(run.state());
    match pb::RunState::try_from(run.state()) {
        Ok(pb::RunState::Succeeded) => Ok(()),
        Ok(pb::RunState::Failed) => {
            let status = match run.error() {
                Some(e) => job_status(e),
                None => tonic::Status::new(tonic::Code::Aborted, "run FAILED without an error recorded"),
            };
            Err(anyhow::Error::new(status))
                .context(Hint(format!(
                    "retry it with: ferry {what} retry {id}, or undo it with: ferry {what} abort {id}",
                    id = id_of(name)
                )))
                .with_context(|| format!("{name} {label}"))
        }
        Ok(pb::RunState::Aborted) => {
            let reason = run.abort_reason();
            let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
            Err(anyhow::Error::new(Exit { code: 1, message: format!("{name} ABORTED{why}") }))
        }
        _ => anyhow::bail!("{name} is still {label}; the watch stream ended early: ferry {what} watch {}", id_of(name)),
    }
}

impl Run for pb::RollbackRun {
    const COMMAND: &'static str = "rollback";
    run_fields!();
    fn frame(&self) -> Frame {
        rollback_frame(self)
    }
    async fn get(client: &mut Refresh, name: String) -> Result<Self, tonic::Status> {
        Ok(client.get_rollback_run(pb::GetRollbackRunRequest { name }).await?.into_inner())
    }
    async fn watch(client: &mut Refresh, name: String) -> Result<tonic::Streaming<Self>, tonic::Status> {
        Ok(client.watch_rollback_run(pb::WatchRollbackRunRequest { name }).await?.into_inner())
    }
}
