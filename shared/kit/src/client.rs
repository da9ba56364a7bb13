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

/// Most items asked for in one page (the servers' maximum).
const MAX_PAGE: usize = 1000;

/// Follows `next_page_token` to the end of a list, or until `limit` items.
/// `fetch(page_size, page_token)` makes one call and returns the page and the next token.
pub async fn all_pages<T, E, F, Fut>(limit: Option<usize>, mut fetch: F) -> Result<Vec<T>, E>
where
    F: FnMut(i32, String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), E>>,
{
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let want = limit.map_or(MAX_PAGE, |l| l.saturating_sub(items.len()).min(MAX_PAGE));
        if want == 0 {
            break;
        }
        let size = i32::try_from(want).unwrap_or(i32::MAX);
        let (page, next) = fetch(size, std::mem::take(&mut token)).await?;
        items.extend(page);
        if next.is_empty() {
            break;
        }
        token = next;
    }
    if let Some(l) = limit {
        items.truncate(l);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn all_pages_follows_tokens_and_stops_at_the_limit() {
        // A list of 25 items served 10 at a time at most.
        let fetch = |size: i32, token: String| async move {
            let from: usize = token.parse().unwrap_or(0);
            let to = (from + size.min(10) as usize).min(25);
            let next = if to < 25 { to.to_string() } else { String::new() };
            Ok::<_, ()>(((from..to).collect::<Vec<_>>(), next))
        };
        assert_eq!(all_pages(None, fetch).await, Ok((0..25).collect::<Vec<_>>()));
        assert_eq!(all_pages(Some(12), fetch).await, Ok((0..12).collect::<Vec<_>>()));
    }
}
