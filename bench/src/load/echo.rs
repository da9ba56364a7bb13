//! The yardstick: a bare tonic server (no layers, no database) answering one unary RPC
//! with the request's payload, on loopback in the same process. Accepted connections get
//! TCP_NODELAY, as tonic's own `Server::serve` gives them.

use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

pub mod pb {
    tonic::include_proto!("ferry.bench.echo.v1");
}

use pb::echo_service_server::{EchoService, EchoServiceServer};

struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, req: Request<pb::EchoRequest>) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(Response::new(pb::EchoResponse { payload: req.into_inner().payload }))
    }
}

/// A running echo server; dropping `stop` ends it.
pub struct EchoServer {
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl EchoServer {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task =
            tokio::spawn(tonic::transport::Server::builder().add_service(EchoServiceServer::new(Echo)).serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    let _ = rx.await;
                },
            ));
        Ok(Self { url, stop, task })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}
