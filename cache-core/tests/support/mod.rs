//! Test doubles shared by the integration tests: a counting upstream whose calls can be held at a gate, and
//! stores that misbehave on purpose.

#![allow(dead_code, unreachable_pub)]

pub mod stores;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use cache_core::{BoxError, Stats};
use tokio::sync::Semaphore;
use tower::Service;

/// What the upstream does with a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Answer,
    Fail,
    Panic,
}

/// An upstream service over `u64` ids answering `"value {id} #{call}"`, counting calls.
///
/// With `gated`, every call waits for a permit from [`Upstream::release`]; with `set_ready(false)`,
/// `poll_ready` stays pending until readiness is restored.
#[derive(Clone)]
pub struct Upstream {
    calls: Arc<AtomicUsize>,
    mode: Arc<Mutex<Mode>>,
    gate: Option<Arc<Semaphore>>,
    ready: Arc<AtomicBool>,
    ready_waiters: Arc<Mutex<Vec<Waker>>>,
}

impl Upstream {
    pub fn new() -> Self {
        Self {
            calls: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Answer)),
            gate: None,
            ready: Arc::new(AtomicBool::new(true)),
            ready_waiters: Arc::default(),
        }
    }

    pub fn gated() -> Self {
        Self {
            gate: Some(Arc::new(Semaphore::new(0))),
            ..Self::new()
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Lets `n` held calls go on.
    pub fn release(&self, n: usize) {
        self.gate.as_ref().expect("not gated").add_permits(n);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
        if ready {
            for waker in self.ready_waiters.lock().unwrap().drain(..) {
                waker.wake();
            }
        }
    }
}

/// The error the upstream returns in [`Mode::Fail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamDown(pub usize);

impl std::fmt::Display for UpstreamDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upstream down (call #{})", self.0)
    }
}

impl std::error::Error for UpstreamDown {}

impl Service<u64> for Upstream {
    type Response = String;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.ready.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        self.ready_waiters.lock().unwrap().push(cx.waker().clone());
        if self.ready.load(Ordering::SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&mut self, id: u64) -> Self::Future {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mode = *self.mode.lock().unwrap();
        let gate = self.gate.clone();
        Box::pin(async move {
            if let Some(gate) = gate {
                gate.acquire().await.expect("gate closed").forget();
            }
            match mode {
                Mode::Answer => Ok(format!("value {id} #{call}")),
                Mode::Fail => Err(UpstreamDown(call).into()),
                Mode::Panic => panic!("upstream panicked on call #{call}"),
            }
        })
    }
}

/// Polls `condition` (yielding to other tasks) until it holds. Gives up after ten seconds of wall time, so a
/// broken invariant fails the test instead of hanging it; this is a hang guard, not a speed assertion.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if condition() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("gave up waiting for: {what}");
}

/// Waits until `n` callers joined a flight as waiters.
pub async fn dedupes_reach(stats: &Stats, n: u64) {
    eventually(&format!("{n} dedupes"), || stats.snapshot().dedupes >= n).await;
}
