//! The merge engine as its own process, driven over gRPC.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferry_kit::client::{ClientInterceptor, channel};
use ferry_proto::merge::v1 as mpb;
use ferry_proto::merge::v1::merge_service_client::MergeServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::Workload;
use crate::data::{CLONE, RECIPIENT, Registry, SOURCE};

pub struct Engine {
    child: Child,
    client: MergeServiceClient<InterceptedService<Channel, ClientInterceptor>>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Engine {
    pub async fn spawn(bin: &Path, database_url: &str, registry: &Registry) -> anyhow::Result<Self> {
        let port = free_port()?;
        let child = Command::new(bin)
            .env("FERRY_MERGE_LISTEN", format!("127.0.0.1:{port}"))
            .env("FERRY_MERGE_DATABASE_URL", database_url)
            .env("FERRY_REGISTRY_URL", &registry.url)
            .env("FERRY_NO_AUTH", "true")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} (build it with cargo build --release -p merge-engine)", bin.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let client = MergeServiceClient::with_interceptor(channel(&url)?, ClientInterceptor::new(None)?);
        let mut engine = Engine { child, client };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let probe = engine.client.list_jobs(mpb::ListJobsRequest::default()).await;
            if probe.is_ok() {
                return Ok(engine);
            }
            if let Some(status) = engine.child.try_wait()? {
                bail!("merge-engine exited at start-up: {status}");
            }
            if Instant::now() > deadline {
                bail!("merge-engine did not answer within 60 s: {probe:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates the plan; returns its name.
    pub async fn plan(&mut self, workload: Workload) -> anyhow::Result<String> {
        let plan = match workload {
            Workload::Merge => self
                .client
                .create_merge_plan(mpb::CreateMergePlanRequest { source: SOURCE.into(), recipient: RECIPIENT.into(), ..Default::default() })
                .await?
                .into_inner(),
            Workload::Clone => {
                let id = CLONE.rsplit('/').next().unwrap_or("clone");
                self.client
                    .plan_clone_group(mpb::PlanCloneGroupRequest { source: SOURCE.into(), group_id: id.into(), ..Default::default() })
                    .await?
                    .into_inner()
            }
        };
        eprintln!("plan {}: {:?}", plan.name, plan.counts);
        Ok(plan.name)
    }

    /// Applies the plan and follows its job to the end.
    pub async fn apply(&mut self, plan: &str) -> anyhow::Result<()> {
        let job = self
            .client
            .apply_merge_plan(mpb::ApplyMergePlanRequest {
                name: plan.into(),
                proceed_with_missing_dependencies: true,
                request_id: String::new(),
            })
            .await?
            .into_inner();
        let mut watch = self.client.watch_job(mpb::WatchJobRequest { name: job.name.clone() }).await?.into_inner();
        let mut last = job;
        while let Some(j) = watch.message().await? {
            last = j;
            if matches!(last.state(), mpb::JobState::Succeeded | mpb::JobState::Failed | mpb::JobState::Cancelled) {
                break;
            }
        }
        if last.state() != mpb::JobState::Succeeded {
            bail!("apply job ended {:?}: {:?}", last.state(), last.error);
        }
        Ok(())
    }

    /// The engine process's peak resident set (VmHWM), in MB.
    pub fn peak_rss_mb(&self) -> anyhow::Result<f64> {
        peak_rss_mb(&self.child.id().to_string())
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peak resident set (VmHWM) of process `pid` (or `self`), in MB.
pub fn peak_rss_mb(pid: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM not found")?;
    Ok(kb / 1024.0)
}
