//! Tokenization off the audio thread. The thread that polls a call's
//! events takes the completed card and [`Worker::submit`]s it (never
//! blocking: a full queue refuses and wipes the card); the worker thread
//! tokenizes the PAN, holds the CVV in memory against the token, wipes
//! the card, and reports a [`Done`] that the host polls. The audio path
//! never touches any of this.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{CvvHolder, Metadata, Vault, VaultError};
use crate::capture::{Card, Cvv};

/// Cards waiting for the worker.
const QUEUE: usize = 64;
/// CVVs held at once.
const CVV_SLOTS: usize = 256;

struct Job {
    tag: u64,
    card: Box<Card>,
}

/// What the worker reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum Done {
    /// The PAN was tokenized.
    Token {
        /// The host's tag from [`Worker::submit`] (say, a call id).
        tag: u64,
        /// The token and its masked metadata.
        metadata: Metadata,
        /// Whether a CVV is held for the token ([`Worker::take_cvv`]).
        cvv_held: bool,
    },
    /// Tokenization failed; the card was wiped.
    Failed {
        /// The host's tag.
        tag: u64,
        /// Why (no card data).
        error: VaultError,
    },
}

/// How long a worker holds a captured CVV for the payment step when the
/// host does not choose (single use; SPEC: a short TTL).
pub const CVV_HOLD: Duration = Duration::from_secs(60);

/// A tokenization worker thread with its vault.
#[derive(Debug)]
pub struct Worker {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    cvv: Arc<Mutex<CvvHolder>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts a worker that tokenizes into `vault` as `actor`, holding
    /// CVVs for `cvv_ttl`.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn spawn(vault: Box<dyn Vault>, actor: &str, cvv_ttl: Duration) -> std::io::Result<Worker> {
        let (jobs, inbox) = mpsc::sync_channel::<Job>(QUEUE);
        let (outbox, done) = mpsc::channel();
        let cvv = Arc::new(Mutex::new(CvvHolder::new(CVV_SLOTS, cvv_ttl)));
        let held = Arc::clone(&cvv);
        let actor = actor.to_owned();
        let thread = std::thread::Builder::new()
            .name("cardveil-tokenize".into())
            .spawn(move || run(vault, &actor, &inbox, &outbox, &held))?;
        Ok(Worker { jobs: Some(jobs), done, cvv, thread: Some(thread) })
    }

    /// Queues a completed card. Never blocks: if the queue is full or the
    /// worker has stopped, the card is wiped and
    /// [`VaultError::WorkerUnavailable`] returned.
    pub fn submit(&self, tag: u64, card: Box<Card>) -> Result<(), VaultError> {
        let jobs = self.jobs.as_ref().ok_or(VaultError::WorkerUnavailable)?;
        match jobs.try_send(Job { tag, card }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(VaultError::WorkerUnavailable),
        }
    }

    /// The next result, if one is ready.
    pub fn poll(&self) -> Option<Done> {
        self.done.try_recv().ok()
    }

    /// The next result, waiting up to `timeout`.
    pub fn wait(&self, timeout: Duration) -> Option<Done> {
        self.done.recv_timeout(timeout).ok()
    }

    /// Copies the CVV held for `token` into `out`, once (for the payment
    /// step); false if none is held or it expired.
    pub fn take_cvv(&self, token: &str, out: &mut Cvv) -> bool {
        self.cvv.lock().unwrap_or_else(PoisonError::into_inner).take_into(token, out, Instant::now())
    }
}

impl Drop for Worker {
    /// Finishes the queued cards, then stops the thread; held CVVs are wiped.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    mut vault: Box<dyn Vault>,
    actor: &str,
    inbox: &Receiver<Job>,
    outbox: &mpsc::Sender<Done>,
    cvv: &Mutex<CvvHolder>,
) {
    loop {
        let job = match inbox.recv_timeout(Duration::from_millis(500)) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                cvv.lock().unwrap_or_else(PoisonError::into_inner).sweep(Instant::now());
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Job { tag, mut card } = job;
        // An unconfigured field is `None` or empty (a slot filled in place).
        let done = match card.pan.as_ref().filter(|p| !p.is_empty()) {
            None => Done::Failed { tag, error: VaultError::Unsupported("a capture without a PAN") },
            Some(pan) => match vault.tokenize(pan, card.expiry.as_ref().filter(|e| !e.is_empty()), actor) {
                Err(error) => Done::Failed { tag, error },
                Ok(metadata) => {
                    let cvv_held = card.cvv.as_mut().is_some_and(|c| {
                        cvv.lock().unwrap_or_else(PoisonError::into_inner).hold(&metadata.token, c, Instant::now())
                    });
                    Done::Token { tag, metadata, cvv_held }
                }
            },
        };
        drop(card);
        if outbox.send(done).is_err() {
            return;
        }
    }
}
