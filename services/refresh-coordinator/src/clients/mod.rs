//! Typed clients of the services the coordinator drives, one module each (the model is
//! merge-engine's `registry.rs`): requests are built and replies converted here, so the
//! rest of the coordinator sees domain types only. Every call presents the service token
//! and the current trace context (`ClientInterceptor`).

pub(crate) mod integration;
pub(crate) mod legacy;
pub(crate) mod merge;
pub(crate) mod registry;

pub use integration::IntegrationClient;
pub use merge::MergeClient;
pub use registry::RegistryClient;

use ferry_kit::client::{ClientInterceptor, ClientTls, channel_with};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Svc = InterceptedService<Channel, ClientInterceptor>;

/// The three downstream services.
#[derive(Clone)]
pub struct Clients {
    pub registry: RegistryClient,
    pub integration: IntegrationClient,
    pub merge: MergeClient,
}

impl Clients {
    pub fn connect(
        registry_url: &str,
        integration_url: &str,
        merge_url: &str,
        interceptor: ClientInterceptor,
        tls: &ClientTls,
    ) -> Result<Self, ferry_kit::Error> {
        let (r, i, m) = (channel_with(registry_url, tls)?, channel_with(integration_url, tls)?, channel_with(merge_url, tls)?);
        Ok(Self {
            registry: RegistryClient::new(InterceptedService::new(r, interceptor.clone())),
            integration: IntegrationClient::new(InterceptedService::new(i, interceptor.clone())),
            merge: MergeClient::new(InterceptedService::new(m, interceptor)),
        })
    }
}

/// Microseconds of a protobuf timestamp (0 when absent).
fn micros(t: Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().map_or(0, ferry_kit::db::micros)
}

/// A google.rpc-style error a downstream resource records (a failed merge job).
fn error_info(e: ferry_proto::common::v1::ErrorStatus) -> crate::domain::ErrorInfo {
    crate::domain::ErrorInfo {
        code: e.code,
        message: e.message,
        violations: e.violations.into_iter().map(|v| (v.violation_type, v.subject, v.description)).collect(),
    }
}
