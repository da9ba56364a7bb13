//! Environments live in the registry: existence and tier are asked there on each use
//! (nothing is cached, so a tier change or a deleted environment is seen at once).

use ferry_kit::client::{ClientInterceptor, ClientTls};
use ferry_proto::common::v1::EnvironmentTier;
use ferry_proto::registry::v1 as rpb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::domain::EnvName;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Production,
    NonProduction,
}

/// A client of the registry's environments.
#[derive(Clone)]
pub struct Environments {
    client: RegistryServiceClient<InterceptedService<Channel, ClientInterceptor>>,
}

impl Environments {
    /// A lazily connecting client of `url`, presenting the service credential `auth`
    /// and, on `https://`, `tls`.
    pub fn connect(url: &str, auth: ClientInterceptor, tls: &ClientTls) -> Result<Self, ferry_kit::Error> {
        let channel = ferry_kit::client::channel_with(url, tls)?;
        Ok(Self { client: RegistryServiceClient::with_interceptor(channel, auth) })
    }

    /// The tier of `env`; NOT_FOUND when the registry does not know it.
    pub async fn tier(&self, env: &EnvName) -> Result<Tier> {
        let reply = self.client.clone().get_environment(rpb::GetEnvironmentRequest { name: env.to_string() }).await;
        match reply {
            Ok(e) => match EnvironmentTier::try_from(e.into_inner().tier) {
                Ok(EnvironmentTier::Production) => Ok(Tier::Production),
                Ok(EnvironmentTier::NonProduction) => Ok(Tier::NonProduction),
                _ => Err(Error::Internal(format!("the registry knows no tier of {env}"))),
            },
            Err(s) if s.code() == tonic::Code::NotFound => Err(Error::not_found("environment", env)),
            Err(s) => Err(Error::remote("group-registry", s)),
        }
    }

    /// Checks that `env` exists.
    pub async fn exists(&self, env: &EnvName) -> Result<()> {
        self.tier(env).await.map(|_| ())
    }
}
