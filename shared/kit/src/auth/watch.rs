//! A table read from a file and read again when the file changes and on SIGHUP, keeping
//! the table in force when the new text is bad: the tokens file and the client
//! certificate identities file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// A table a [`Watched`] file holds.
pub trait TableFile: Sized + Send + Sync + 'static {
    /// What the file is, for messages (`tokens file`).
    const WHAT: &'static str;
    /// The table of the file's text; the error names the line.
    fn parse(text: &str) -> Result<Self, String>;
    /// How many entries the table holds, for the log.
    fn entries(&self) -> usize;
}

/// The lines of a table file that hold an entry (not blank, not a `#` comment): the line
/// number (from 1) and the whitespace-separated fields.
pub(crate) fn entries(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .map(|(n, line)| (n + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| (n, line.split_whitespace().collect()))
}

/// The table a server goes by now: its file, read again when it changes.
#[derive(Debug)]
pub struct Watched<T> {
    path: PathBuf,
    /// The table and the SHA-256 of the text it was read from.
    current: RwLock<(Arc<T>, [u8; 32])>,
}

impl<T: TableFile> Watched<T> {
    fn read(path: &Path) -> Result<String, crate::Error> {
        std::fs::read_to_string(path).map_err(|e| crate::Error::Config(format!("{} {}: {e}", T::WHAT, path.display())))
    }

    fn parse(path: &Path, text: &str) -> Result<T, crate::Error> {
        T::parse(text).map_err(|e| crate::Error::Config(format!("{} {}: {e}", T::WHAT, path.display())))
    }

    /// Reads the file at `path`; a missing or bad file is a configuration error.
    pub fn open(path: &Path) -> Result<Self, crate::Error> {
        let text = Self::read(path)?;
        let table = Self::parse(path, &text)?;
        Ok(Self { path: path.to_owned(), current: RwLock::new((Arc::new(table), Sha256::digest(text.as_bytes()).into())) })
    }

    /// The table in force.
    pub fn table(&self) -> Arc<T> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// Reads the file again; `Ok(true)` when its text changed and the new table is in
    /// force. A file that cannot be read or parsed leaves the table in force as it was.
    pub fn reload(&self) -> Result<bool, crate::Error> {
        let text = Self::read(&self.path)?;
        let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if self.current.read().unwrap_or_else(|e| e.into_inner()).1 == digest {
            return Ok(false);
        }
        let table = Self::parse(&self.path, &text)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = (Arc::new(table), digest);
        Ok(true)
    }

    /// Reads the file again every `interval` and on SIGHUP, for as long as the server
    /// serves; logs each change in force, and a bad file (the previous table stays).
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let what = T::WHAT;
        let mut ticker = Ticker::new(interval);
        loop {
            ticker.next(what).await;
            match self.reload() {
                Ok(true) => {
                    tracing::info!(path = %self.path.display(), entries = self.table().entries(), "{what} changed; new entries in force")
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "{what} not reloaded; the previous entries stay in force"),
            }
        }
    }
}

/// Ticks every `interval` and on SIGHUP.
pub(crate) struct Ticker {
    tick: tokio::time::Interval,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Ticker {
    pub(crate) fn new(interval: Duration) -> Self {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        #[cfg(unix)]
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        #[cfg(unix)]
        return Self { tick, hup };
        #[cfg(not(unix))]
        Self { tick }
    }

    /// Waits for the next tick or SIGHUP (logged as a reason to read `what` again).
    pub(crate) async fn next(&mut self, what: &str) {
        #[cfg(unix)]
        {
            let hangup = async {
                match self.hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.tick.tick() => {}
                _ = hangup => tracing::info!("SIGHUP: reading the {what} again"),
            }
        }
        #[cfg(not(unix))]
        self.tick.tick().await;
    }
}
