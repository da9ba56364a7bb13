//! Client side of service-to-service and CLI calls: a channel to an endpoint and an
//! interceptor that adds the bearer token and the current trace context (W3C
//! `traceparent`) to every request, so one request is one trace across services.

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};

/// Adds `authorization` and W3C trace context to outgoing requests.
#[derive(Clone, Default)]
pub struct ClientInterceptor {
    bearer: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl ClientInterceptor {
    pub fn new(token: Option<&str>) -> Result<Self, crate::Error> {
        let bearer = token
            .map(|t| {
                format!("Bearer {t}")
                    .parse::<MetadataValue<_>>()
                    .map_err(|_| crate::Error::Config("token has characters not allowed in a header".into()))
            })
            .transpose()?;
        Ok(Self { bearer })
    }
}

impl Interceptor for ClientInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(b) = &self.bearer {
            request.metadata_mut().insert("authorization", b.clone());
        }
        crate::telemetry::inject_current(request.metadata_mut());
        Ok(request)
    }
}

/// A lazily connecting channel to `url` (`http://host:port`).
pub fn channel(url: &str) -> Result<Channel, crate::Error> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| crate::Error::Config(format!("endpoint {url}: {e}")))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true);
    Ok(endpoint.connect_lazy())
}
