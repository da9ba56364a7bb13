//! Calls any method by its path over a tonic channel with [`RawCodec`]: unary,
//! client-streaming, server-streaming (read for a bounded number of messages or a short
//! time, then dropped: Watch streams never end on their own while a run is alive) and
//! bidirectional. Every call carries a deadline and, usually, a bearer token.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tonic::Code;
use tonic::client::Grpc;
use tonic::codec::Streaming;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::codec::RawCodec;
use crate::methods::Method;

/// A reply larger than this is a finding of its own; the client still reads it so the
/// names in it reach the pool (tonic's default of 4 MiB would fail here, in the client).
const MAX_REPLY: usize = 64 << 20;
/// The client gives up this long after the deadline it sent.
const GRACE: Duration = Duration::from_secs(2);

/// The bearer tokens of the suite under test.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub admin: String,
    pub operator: String,
    pub viewer: String,
}

/// Who a call is made as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Admin,
    Operator,
    Viewer,
    Nobody,
}

/// How long a server stream is read before the client drops it.
#[derive(Debug, Clone, Copy)]
pub struct StreamRead {
    pub max_messages: usize,
    pub max_time: Duration,
}

/// What came back.
#[derive(Debug)]
pub struct Outcome {
    pub code: Code,
    pub message: String,
    pub replies: Vec<Bytes>,
    /// The client's own deadline passed (the server never answered in time).
    pub client_timeout: bool,
}

/// One channel (one HTTP/2 connection) per service, and the tokens.
#[derive(Debug, Clone)]
pub struct Caller {
    endpoints: Vec<(String, String)>,
    channels: HashMap<String, Channel>,
    tokens: Tokens,
    deadline: Duration,
}

impl Caller {
    /// `endpoints`: (service full name, `http://host:port`).
    pub fn new(endpoints: &[(String, String)], tokens: Tokens, deadline: Duration) -> Result<Self, crate::Error> {
        let mut channels = HashMap::new();
        for (service, url) in endpoints {
            channels.insert(service.clone(), ferry_kit::client::channel(url)?);
        }
        Ok(Self { endpoints: endpoints.to_vec(), channels, tokens, deadline })
    }

    /// The same caller on connections of its own. Each worker gets one: a reply that
    /// breaks its HTTP/2 connection then fails only the call that asked for it, so the
    /// bad call is pinned on the right request instead of on whoever shared the line.
    pub fn reconnect(&self) -> Result<Self, crate::Error> {
        Self::new(&self.endpoints, self.tokens.clone(), self.deadline)
    }

    fn request<T>(&self, body: T, who: Who) -> tonic::Request<T> {
        let mut request = tonic::Request::new(body);
        request.set_timeout(self.deadline);
        let token = match who {
            Who::Admin => Some(&self.tokens.admin),
            Who::Operator => Some(&self.tokens.operator),
            Who::Viewer => Some(&self.tokens.viewer),
            Who::Nobody => None,
        };
        if let Some(value) = token.and_then(|t| MetadataValue::try_from(format!("Bearer {t}")).ok()) {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// Sends `messages` (one for a unary call; any number for a client stream).
    pub async fn call(&self, method: &Method, messages: Vec<Bytes>, who: Who, read: StreamRead) -> Outcome {
        let Some(channel) = self.channels.get(&method.service) else {
            return Outcome {
                code: Code::Unimplemented,
                message: "no endpoint for this service".into(),
                replies: vec![],
                client_timeout: false,
            };
        };
        let Ok(path) = http::uri::PathAndQuery::try_from(method.path.as_str()) else {
            return Outcome { code: Code::Unimplemented, message: "path is not a URI path".into(), replies: vec![], client_timeout: false };
        };
        let mut grpc = Grpc::new(channel.clone()).max_decoding_message_size(MAX_REPLY);
        let exchange = async {
            let mut replies = Vec::new();
            if let Err(e) = grpc.ready().await {
                return (replies, Err(tonic::Status::unavailable(format!("channel not ready: {e}"))));
            }
            let result = match (method.client_streaming, method.server_streaming) {
                (false, false) => {
                    let first = messages.into_iter().next().unwrap_or_default();
                    grpc.unary(self.request(first, who), path, RawCodec).await.map(|r| replies.push(r.into_inner()))
                }
                (true, false) => {
                    let body = self.request(tokio_stream::iter(messages), who);
                    grpc.client_streaming(body, path, RawCodec).await.map(|r| replies.push(r.into_inner()))
                }
                (false, true) => {
                    let first = messages.into_iter().next().unwrap_or_default();
                    match grpc.server_streaming(self.request(first, who), path, RawCodec).await {
                        Ok(stream) => drain(stream.into_inner(), read, &mut replies).await,
                        Err(status) => Err(status),
                    }
                }
                (true, true) => match grpc.streaming(self.request(tokio_stream::iter(messages), who), path, RawCodec).await {
                    Ok(stream) => drain(stream.into_inner(), read, &mut replies).await,
                    Err(status) => Err(status),
                },
            };
            (replies, result)
        };
        match tokio::time::timeout(self.deadline + GRACE, exchange).await {
            Err(_) => {
                Outcome { code: Code::DeadlineExceeded, message: "client deadline passed".into(), replies: vec![], client_timeout: true }
            }
            Ok((replies, Ok(()))) => Outcome { code: Code::Ok, message: String::new(), replies, client_timeout: false },
            Ok((replies, Err(status))) => {
                // A status that broke in the transport (not sent by the server) says so.
                let message = match std::error::Error::source(&status) {
                    Some(source) => format!("{} (transport: {source})", status.message()),
                    None => status.message().to_owned(),
                };
                Outcome { code: status.code(), message, replies, client_timeout: false }
            }
        }
    }
}

/// Reads a server stream until it ends, fails, or `read` is used up (then it is dropped,
/// which cancels it, and counts as OK).
async fn drain(mut stream: Streaming<Bytes>, read: StreamRead, replies: &mut Vec<Bytes>) -> Result<(), tonic::Status> {
    let until = tokio::time::Instant::now() + read.max_time;
    while replies.len() < read.max_messages {
        match tokio::time::timeout_at(until, stream.message()).await {
            Err(_) | Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(m))) => replies.push(m),
            Ok(Err(status)) => return Err(status),
        }
    }
    Ok(())
}
