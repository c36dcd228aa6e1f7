//! A TCP relay in front of a server that can be paused: the connections through it stay open and carry
//! nothing, as in a network partition, while the server goes on serving everyone else.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Relays loopback connections to a port. Stops accepting when dropped; connections it relays end with
/// either side.
///
/// ```no_run
/// let server = redis_test_server::RedisServer::start();
/// let relay = redis_test_server::Relay::to(server.port());
/// let url = relay.url(); // a client of this URL is cut off by `relay.pause()`
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct Relay {
    port: u16,
    paused: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
}

impl Relay {
    /// Starts relaying a free loopback port to `target` on loopback.
    ///
    /// # Panics
    /// When no port can be bound.
    pub fn to(target: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a relay port");
        let port = listener.local_addr().expect("relay address").port();
        let paused = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let (pause, stop) = (Arc::clone(&paused), Arc::clone(&stopped));
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let Ok(client) = client else { continue };
                // While paused, a new connection is accepted and then carries nothing either.
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                // Small pipelined commands must not wait for Nagle's algorithm.
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    if let (Ok(from), Ok(to)) = (from, to) {
                        let pause = Arc::clone(&pause);
                        thread::spawn(move || pump(from, to, &pause));
                    }
                }
            }
        });
        Self {
            port,
            paused,
            stopped,
        }
    }

    /// The relay's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<relay port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Holds every byte in both directions until [`resume`](Self::resume); connections stay open.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    /// Delivers what was held and relays again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Release);
        self.resume();
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to`, holding each chunk while paused.
fn pump(mut from: TcpStream, mut to: TcpStream, paused: &AtomicBool) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        while paused.load(Ordering::Acquire) {
            thread::sleep(Duration::from_millis(1));
        }
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
