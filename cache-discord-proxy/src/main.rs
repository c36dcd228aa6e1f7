//! `cache-discord-proxy`: the proxy as a process. Settings from the environment (see the crate docs);
//! stops gracefully on SIGTERM or Ctrl-C.

use cache_discord_proxy::{LogFormat, Proxy, ProxySettings};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = match ProxySettings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("cache-discord-proxy: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match settings.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Plain => logs.init(),
    }
    let running = match Proxy::from_env(settings) {
        Ok(proxy) => proxy.start().await,
        Err(error) => Err(error),
    };
    let running = match running {
        Ok(running) => running,
        Err(error) => {
            tracing::error!(%error, "discord proxy: cannot start");
            return std::process::ExitCode::from(2);
        }
    };
    shutdown_signal().await;
    tracing::info!("discord proxy: shutting down; finishing requests in flight");
    running.shutdown().await;
    std::process::ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
