//! [`LocalDynamo`]: a private DynamoDB-compatible server (moto's server mode, from PyPI) on a free
//! port, for the example and its tests: no AWS account, no network.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's command, and how to install it.
const MOTO_SERVER: &str = "moto_server";
const INSTALL_HINT: &str = "install it with: pip install 'moto[server]'";

/// Why the local server did not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalDynamoError {
    /// `moto_server` is not on `PATH`.
    #[error("{MOTO_SERVER} not found on PATH: {INSTALL_HINT}")]
    NotInstalled,
    /// It could not be started, or never listened.
    #[error("{MOTO_SERVER} did not start: {0}")]
    NotStarted(String),
}

/// A running `moto_server`, stopped when dropped, and also when this process exits without dropping it
/// (a static shared by tests): it runs under a shell that stops it when its input closes.
#[derive(Debug)]
pub struct LocalDynamo {
    shell: Child,
    input: Option<ChildStdin>,
    port: u16,
}

impl LocalDynamo {
    /// Starts `moto_server` on a free port of 127.0.0.1 and waits until it answers.
    ///
    /// # Errors
    /// [`LocalDynamoError::NotInstalled`] with the install command when `moto_server` is missing.
    pub fn start() -> Result<Self, LocalDynamoError> {
        let server = find_on_path(MOTO_SERVER).ok_or(LocalDynamoError::NotInstalled)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|error| LocalDynamoError::NotStarted(error.to_string()))?
            .port();
        // The shell stops the server once its standard input closes (this value is dropped, or the
        // process that holds it exits) or when it is signalled, and exits when the server does (it
        // could not bind its port, say).
        let script = r#"
            exec 3<&0
            "$0" -H 127.0.0.1 -p "$1" >/dev/null 2>&1 &
            server=$!
            trap 'kill "$server" 2>/dev/null' EXIT INT TERM HUP
            { read _ <&3; kill "$server" 2>/dev/null; } &
            wait "$server"
        "#;
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&server)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| LocalDynamoError::NotStarted(error.to_string()))?;
        let input = shell.stdin.take();
        let mut local = Self { shell, input, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                return Err(LocalDynamoError::NotStarted(format!(
                    "nothing listens on port {port} after 60 s"
                )));
            }
            if let Ok(Some(status)) = local.shell.try_wait() {
                return Err(LocalDynamoError::NotStarted(format!("it exited: {status}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(local)
    }

    /// `http://127.0.0.1:PORT`, the endpoint URL for the SDK.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalDynamo {
    fn drop(&mut self) {
        if let Some(mut input) = self.input.take() {
            let _ = input.write_all(b"\n");
        }
        let _ = self.shell.wait();
    }
}

fn find_on_path(command: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(command))
        .find(|path| path.is_file())
}
