//! A private `redis-server` for tests and benchmarks.
//!
//! Each [`RedisServer`] runs its own `redis-server` process on a free loopback port, with persistence off
//! and its files in a temporary directory, and stops it when dropped. Tests therefore never touch a Redis
//! they did not start. [`RedisServer::start_tls`] serves TLS only, with a certificate authority and a
//! `localhost` certificate generated on the spot.
//!
//! A missing `redis-server` binary is a loud failure with the install hint, never a skipped test.
//!
//! ```no_run
//! let server = redis_test_server::RedisServer::start();
//! let url = server.url(); // redis://127.0.0.1:<port>
//! # let _ = url;
//! ```

mod cluster;
mod relay;

pub use cluster::{ClusterNode, RedisCluster};
pub use relay::Relay;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to install the server when it is missing.
pub const INSTALL_HINT: &str =
    "redis-server is not on PATH: install it (Debian/Ubuntu: `apt-get update && apt-get install -y redis-server`; macOS: `brew install redis`)";

const STARTUP_LIMIT: Duration = Duration::from_secs(20);

/// Certificates of a TLS server, PEM encoded.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate authority that signed the server's certificate: what a client must trust.
    pub ca_cert_pem: Vec<u8>,
    /// Where `ca.pem`, `server.pem` and `server.key` are (shared by the nodes of a TLS cluster).
    dir: PathBuf,
}

impl TlsFiles {
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether a server speaks TLS, and with which certificates.
pub(crate) enum Tls {
    Off,
    /// Certificates of its own, in its directory.
    Own,
    /// Certificates made for several servers (a cluster's nodes trust each other).
    Shared(TlsFiles),
}

/// A running private `redis-server`. Killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    tls: Option<TlsFiles>,
    /// Further `redis-server` arguments (a cluster node's).
    extra: Vec<String>,
    /// Frozen by [`pause`](Self::pause).
    paused: std::sync::atomic::AtomicBool,
}

impl RedisServer {
    /// Starts a plain server on a free port.
    ///
    /// # Panics
    /// When `redis-server` is missing (with [`INSTALL_HINT`]) or does not start.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Starts a TLS-only server on a free port, with a freshly generated certificate authority.
    ///
    /// # Panics
    /// When `redis-server` is missing or was built without TLS support.
    pub fn start_tls() -> Self {
        Self::launch(true)
    }

    fn launch(tls: bool) -> Self {
        let tls = if tls { Tls::Own } else { Tls::Off };
        Self::launch_with(tls, free_port(), Vec::new())
    }

    /// A server on `port`, started with further arguments.
    pub(crate) fn launch_with(tls: Tls, port: u16, extra: Vec<String>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("redis-test-")
            .tempdir()
            .expect("temporary directory");
        let tls = match tls {
            Tls::Off => None,
            Tls::Own => Some(write_certificates(dir.path())),
            Tls::Shared(files) => Some(files),
        };
        let mut server = Self {
            child: None,
            port,
            dir,
            tls,
            extra,
            paused: std::sync::atomic::AtomicBool::new(false),
        };
        server.spawn();
        server
    }

    /// Whether the process is running (not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://localhost:<port>` for a TLS server.
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("rediss://localhost:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The certificates of a TLS server.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Whether the server is running and not paused: it answers.
    pub fn is_answering(&self) -> bool {
        self.is_running() && !self.paused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Kills the server abruptly (SIGKILL), as a crash would: its connections close at once.
    pub fn kill(&mut self) {
        self.paused
            .store(false, std::sync::atomic::Ordering::Relaxed);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open and requests go unanswered, as with a hung
    /// host or a network black hole.
    ///
    /// # Panics
    /// When the server is not running or the signal cannot be sent.
    pub fn pause(&self) {
        self.signal("-STOP");
        self.paused
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Lets a paused server go on (SIGCONT).
    ///
    /// # Panics
    /// When the server is not running or the signal cannot be sent.
    pub fn resume(&self) {
        self.signal("-CONT");
        self.paused
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("server running")
            .id()
            .to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Starts the server again on the same port, empty (nothing is persisted).
    ///
    /// # Panics
    /// When it does not start.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends one command over a fresh connection and returns the reply as text (bulk strings raw,
    /// arrays line by line), for test assertions such as `INFO commandstats`. A TLS server is asked
    /// through `redis-cli --tls`.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub fn command(&self, args: &[&str]) -> String {
        if let Some(tls) = &self.tls {
            return self.command_over_tls(tls, args);
        }
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the test server");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).expect("send command");
        read_reply(&mut BufReader::new(stream))
    }

    /// `command` on a TLS server, through `redis-cli --raw` (which prints replies as `command` does).
    fn command_over_tls(&self, tls: &TlsFiles, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(tls.dir.join("ca.pem"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run redis-cli ({error}): {INSTALL_HINT}"));
        assert!(
            output.status.success(),
            "redis-cli failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        text.strip_suffix('\n').unwrap_or(&text).to_owned()
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let log = dir.join("redis.log");
        let _ = std::fs::remove_file(&log);
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command.args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]);
        command.arg("--dir").arg(dir).arg("--logfile").arg(&log);
        command.args(&self.extra);
        if let Some(tls) = &self.tls {
            command.args([
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-auth-clients",
                "no",
            ]);
            let files = &tls.dir;
            command.arg("--tls-cert-file").arg(files.join("server.pem"));
            command.arg("--tls-key-file").arg(files.join("server.key"));
            command.arg("--tls-ca-cert-file").arg(files.join("ca.pem"));
        } else {
            command.args(["--port", &port]);
        }
        let child = match command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn() {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(error) => panic!("cannot run redis-server: {error}"),
        };
        self.child = Some(child);
        self.wait_until_ready(&log);
    }

    fn wait_until_ready(&mut self, log: &Path) {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("Ready to accept connections") {
                return;
            }
            let child = self.child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!(
                    "redis-server exited ({status}) on port {}:\n{stderr}\n{text}",
                    self.port
                );
            }
            assert!(
                started.elapsed() < STARTUP_LIMIT,
                "redis-server not ready after {STARTUP_LIMIT:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server would ignore SIGKILL until resumed on some systems; resume first.
        if self.child.is_some() {
            let _ = Command::new("kill")
                .args([
                    "-CONT",
                    &self.child.as_ref().map(Child::id).unwrap_or(0).to_string(),
                ])
                .status();
        }
        self.kill();
    }
}

pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

pub(crate) fn write_certificates(dir: &Path) -> TlsFiles {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "redis-test-server CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");

    let server_key = KeyPair::generate().expect("server key");
    let mut server_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server parameters");
    server_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server_cert = server_params
        .signed_by(&server_key, &ca_cert, &ca_key)
        .expect("server certificate");

    let write = |name: &str, contents: String| {
        let path: PathBuf = dir.join(name);
        std::fs::write(&path, contents)
            .unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
    };
    write("ca.pem", ca_cert.pem());
    write("server.pem", server_cert.pem());
    write("server.key", server_key.serialize_pem());
    TlsFiles {
        ca_cert_pem: ca_cert.pem().into_bytes(),
        dir: dir.to_owned(),
    }
}

/// Reads one RESP reply and renders it as text (bulk strings raw, arrays line by line).
fn read_reply(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read reply");
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" | "-" | ":" => rest.to_owned(),
        "$" => {
            let len: i64 = rest.parse().expect("bulk length");
            if len < 0 {
                return String::new();
            }
            let mut body = vec![0; usize::try_from(len).expect("length") + 2];
            reader.read_exact(&mut body).expect("bulk body");
            body.truncate(body.len() - 2);
            String::from_utf8_lossy(&body).into_owned()
        }
        "*" => {
            let len: i64 = rest.parse().expect("array length");
            (0..len.max(0))
                .map(|_| read_reply(reader))
                .collect::<Vec<_>>()
                .join("\n")
        }
        other => panic!("unexpected RESP reply type {other:?}"),
    }
}
