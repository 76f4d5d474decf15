//! Reloads the certificate files when they change, without restarting the listener.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

use super::certs::CertStore;
use super::TlsConfig;

/// Modification time, size and inode of every file the certificates come from, so a file
/// replaced by a rename counts as changed too. `None` marks a missing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint(Vec<(PathBuf, Option<(SystemTime, u64, u64)>)>);

impl Fingerprint {
    /// Reads the metadata of the wildcard pair, the certificate directory and its files.
    pub(crate) fn of(config: &TlsConfig) -> Fingerprint {
        let mut paths = vec![config.cert.clone(), config.key.clone()];
        if let Some(dir) = &config.cert_dir {
            paths.push(dir.clone());
            if let Ok(entries) = std::fs::read_dir(dir) {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|entry| Some(entry.ok()?.path()))
                    .collect();
                files.sort();
                paths.extend(files);
            }
        }
        let entries = paths
            .into_iter()
            .map(|path| {
                let stamp = file_stamp(&path);
                (path, stamp)
            })
            .collect();
        Fingerprint(entries)
    }
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len(), metadata.ino()))
}

/// Checks the files every `config.reload_interval` on a thread of its own and publishes the
/// certificates again after a change, until `stop` turns true or its sender is dropped. SIGHUP
/// reloads them at once, changed or not.
///
/// A reload that fails logs the error with the file and keeps the previous certificates. The
/// same files are not retried until one of them changes again or SIGHUP arrives.
pub(crate) fn spawn(
    config: TlsConfig,
    base_domain: String,
    certs: Arc<ArcSwap<CertStore>>,
    loaded: Fingerprint,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to build the runtime of the TLS certificate reloader")?;
    // Installing the handler replaces SIGHUP's default action, which terminates the process. It
    // is installed before `spawn` returns, so SIGHUP does not stop a started edge.
    let hangup = {
        let _runtime = runtime.enter();
        match signal(SignalKind::hangup()) {
            Ok(hangup) => Some(hangup),
            Err(error) => {
                tracing::error!(
                    %error,
                    "failed to listen for SIGHUP; TLS certificates reload only on file changes"
                );
                None
            }
        }
    };
    std::thread::Builder::new()
        .name("mockforge-edge-tls".to_owned())
        .spawn(move || {
            let files = follow_files(config, base_domain, certs, loaded, hangup, stop);
            runtime.block_on(files)
        })
        .context("failed to spawn the TLS certificate reloader thread")?;
    Ok(())
}

async fn follow_files(
    config: TlsConfig,
    base_domain: String,
    certs: Arc<ArcSwap<CertStore>>,
    mut seen: Fingerprint,
    mut hangup: Option<Signal>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let forced = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            _ = tokio::time::sleep(config.reload_interval) => false,
            Some(()) = recv_hangup(&mut hangup) => true,
        };
        let current = Fingerprint::of(&config);
        if current == seen && !forced {
            continue;
        }
        // The fingerprint is taken before loading, so a write during the load shows up as a
        // change on the next check.
        seen = current;
        match CertStore::load(&config, &base_domain) {
            Ok(loaded) => {
                tracing::info!(
                    cert = %config.cert.display(),
                    cause = if forced { "SIGHUP" } else { "file change" },
                    custom_certificates = loaded.custom_count(),
                    "reloaded the TLS certificates"
                );
                certs.store(Arc::new(loaded));
            }
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    cause = if forced { "SIGHUP" } else { "file change" },
                    "failed to reload the TLS certificates; still serving the previous ones"
                );
            }
        }
    }
}

/// Waits for the next SIGHUP, or forever without a handler.
async fn recv_hangup(hangup: &mut Option<Signal>) -> Option<()> {
    match hangup {
        Some(hangup) => hangup.recv().await,
        None => std::future::pending().await,
    }
}
