//! One Watch for every run kind: the run now, then the run again each time it changes,
//! until it settles (SUCCEEDED, FAILED, ABORTED). Runs saved by this process arrive as
//! events; a run another replica drives is looked at every half second (its version, one
//! small read) and read again only when it changed; a watcher that fell behind the events
//! reads the run again.

use std::time::Duration;

use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::{Engine, Kind, RunOf, store};
use crate::error::Result;

struct Watch<K: Kind> {
    engine: Engine,
    events: tokio::sync::broadcast::Receiver<super::Saved>,
    id: String,
    first: Option<RunOf<K>>,
    last: Option<RunOf<K>>,
    /// The stamp ([`store::stamp`]) of the last read.
    stamp: Option<(i64, bool)>,
    ended: bool,
}

impl<K: Kind> Watch<K> {
    /// The run read again, and its stamp read just before it (so a later change is seen).
    async fn read(&mut self) -> Result<RunOf<K>> {
        self.stamp = store::stamp(self.engine.db(), &self.id).await?;
        self.engine.get::<K>(&self.id).await
    }

    async fn next(&mut self) -> Result<RunOf<K>> {
        if let Some(run) = self.first.take() {
            return Ok(run);
        }
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    Ok(saved) if saved.id == self.id => return self.read().await,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return self.read().await,
                    Err(RecvError::Closed) => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        return self.read().await;
                    }
                },
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    let now = store::stamp(self.engine.db(), &self.id).await?;
                    if now.is_none() || now != self.stamp {
                        return self.read().await;
                    }
                }
            }
        }
    }
}

impl Engine {
    /// The run `first` (as just read) and every change of it, until it settles; an error
    /// (the run deleted, the database gone) ends the stream.
    pub fn watch<K: Kind>(&self, first: RunOf<K>) -> impl Stream<Item = Result<RunOf<K>>> + Send + 'static {
        let state = Watch::<K> {
            engine: self.clone(),
            events: self.subscribe(),
            id: first.id.clone(),
            first: Some(first),
            last: None,
            stamp: None,
            ended: false,
        };
        futures::stream::unfold(state, |mut w| async move {
            if w.ended {
                return None;
            }
            loop {
                match w.next().await {
                    Ok(run) if w.last.as_ref() == Some(&run) => {}
                    Ok(run) => {
                        w.ended = run.state.settled();
                        w.last = Some(run.clone());
                        return Some((Ok(run), w));
                    }
                    Err(e) => {
                        w.ended = true;
                        return Some((Err(e), w));
                    }
                }
            }
        })
    }
}
