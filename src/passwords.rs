//! Password hashing with argon2id on a fixed pool of worker threads, so a storm of sign-ins
//! queues here instead of starving the async runtime.
//!
//! A fixed pool, each worker with argon2 memory of its own that it reuses: each computation needs
//! ~19 MiB, and allocating it afresh every time (on tokio's many blocking threads) left the
//! process ~13 MiB larger per concurrent sign-in, as the allocator kept what was freed. Now the
//! footprint is at most `workers` × 19 MiB while sign-ins come, and none once they stop: a
//! worker that waits [`IDLE_RELEASE`] for a job gives its memory back to the system (each worker
//! waits on its own, so all of it is back within two periods, see [`Memory::release`]).
//!
//! The queue in front of the workers is bounded too (`login.password_queue`): past it a request
//! is refused at once with [`Busy`] (503 and `Retry-After`), rather than waiting ever longer and
//! holding its memory while a flood of sign-ins piles up.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use flume::{RecvTimeoutError, Sender};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A worker that has had no job for this long frees its argon2 memory; as long again later, it
/// makes the allocator hand it back to the system (see [`Memory::release`]). Longer than
/// mimalloc's purge delay (1 s), and short enough that a burst of sign-ins leaves nothing behind
/// seconds later; a sign-in that comes to an idle worker pays for its memory's page faults
/// (a few ms, against tens for the hash).
const IDLE_RELEASE: Duration = Duration::from_millis(1500);

/// The capacity a worker's argon2 memory is allocated with, in blocks: past the largest
/// threshold above which glibc's malloc maps an allocation on its own (32 MiB), so that freeing
/// it unmaps it, rather than leaving 19 MiB in an arena the allocator keeps. Pages never touched
/// (those past the 19 MiB argon2 uses) cost nothing.
const OWN_MAPPING_BLOCKS: usize = (32 << 20) / std::mem::size_of::<Block>() + 1;

/// A job runs on a worker with that worker's argon2 memory.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// One worker's argon2 memory, allocated on first use and kept while jobs come: hashing never
/// allocates.
#[derive(Default)]
struct Memory {
    blocks: Vec<Block>,
    /// Freed, and not yet seen back by the system (see [`Memory::release`]).
    freed: bool,
}

impl Memory {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let n = params.block_count();
        let blocks = &mut self.blocks;
        if blocks.len() < n {
            if blocks.capacity() < n {
                blocks.reserve_exact(n.max(OWN_MAPPING_BLOCKS) - blocks.len());
            }
            blocks.resize(n, Block::new());
        }
        &mut blocks[..n]
    }

    /// Gives the memory back (to be allocated again by the next job), in two idle periods.
    ///
    /// mimalloc, the binary's allocator, hands freed memory back to the system a second after
    /// the free, once the freeing thread next allocates past its small-object pages. An idle
    /// worker makes no such allocation, and its 19 MiB stayed resident for good; so a period
    /// after the free it makes one (1 MiB, freed at once).
    fn release(&mut self) {
        if self.blocks.capacity() > 0 {
            self.blocks = Vec::new();
            self.freed = true;
        } else if std::mem::take(&mut self.freed) {
            drop(std::hint::black_box(vec![0u8; 1 << 20]));
        }
    }
}

/// The queue is full: the caller answers 503 with `Retry-After`.
#[derive(Debug, thiserror::Error)]
#[error("the password queue is full")]
pub struct Busy;

#[derive(Clone)]
pub struct Passwords {
    jobs: Sender<Job>,
    /// How many computations run at once.
    workers: usize,
    /// Jobs sent and not yet started.
    waiting: Arc<AtomicUsize>,
    /// The most jobs that may wait; more are refused.
    max_waiting: usize,
    /// Verified against when the account does not exist, so unknown users cost the same time as
    /// wrong passwords (no account enumeration by timing).
    dummy: Arc<str>,
}

/// What an unknown account's password is checked against: a hash with the parameters of
/// [`hash_with`] (a test holds them equal), of a password nobody is told. A constant, not
/// computed at start: that took 19 MiB which an allocator may keep.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$yDlpEv+21Y7+rIwOJYbiuw$K3tHhP2txl09Qr+6/ENsmopZGk0Whq2umXtIyntKyJk";

/// A new argon2id hash (default parameters, random salt) in PHC string form.
fn hash_with(password: &str, memory: &mut Memory) -> anyhow::Result<String> {
    let params = Params::default();
    let salt = Salt::generate();
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory.blocks(&params))
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Does `password` match the PHC string `hash`? Computed with the hash's own parameters.
fn verify_with(password: &str, hash: &str, memory: &mut Memory) -> bool {
    let Ok(phc) = PasswordHash::new(hash) else { return false };
    let (Ok(params), Ok(algorithm)) = (Params::try_from(&phc), Algorithm::try_from(phc.algorithm.as_str())) else {
        return false;
    };
    let version = match phc.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else { return false };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory.blocks(&params))
        .is_ok()
        && crate::crypto::constant_time_eq(&out, expected.as_bytes())
}

impl Passwords {
    /// Starts `workers` threads, each with its own argon2 memory; they end with the last handle.
    /// At most `max_waiting` computations wait for a worker.
    pub fn new(workers: usize, max_waiting: usize) -> Self {
        let workers = workers.max(1);
        let (jobs, queue) = flume::unbounded::<Job>();
        for i in 0..workers {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut memory = Memory::default();
                    loop {
                        // Each worker that waits a whole period with no job frees its memory.
                        match queue.recv_timeout(IDLE_RELEASE) {
                            Ok(job) => job(&mut memory),
                            Err(RecvTimeoutError::Timeout) => memory.release(),
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    }
                })
                .expect("spawn a password worker");
        }
        Self { jobs, workers, dummy: DUMMY_HASH.into(), waiting: Arc::default(), max_waiting }
    }

    /// Runs `f` on a worker and waits for its result; [`Busy`] at once when the queue is full
    /// and `bounded`.
    async fn run<T: Send + 'static>(
        &self,
        bounded: bool,
        f: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting && bounded {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy.into());
        }
        let (tx, rx) = oneshot::channel();
        crate::metrics::argon2_queue(1.0);
        let waiting = self.waiting.clone();
        let started = waiting.clone();
        self.jobs
            .send(Box::new(move |memory| {
                started.fetch_sub(1, Ordering::SeqCst);
                crate::metrics::argon2_queue(-1.0);
                let _ = tx.send(f(memory));
            }))
            .map_err(|_| {
                waiting.fetch_sub(1, Ordering::SeqCst);
                crate::metrics::argon2_queue(-1.0);
                anyhow::anyhow!("password workers stopped")
            })?;
        Ok(rx.await?)
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        self.run(false, move |memory| hash_with(&password, memory)).await?
    }

    /// True when `password` matches `hash`; with no hash, spends the same effort and says no.
    /// [`Busy`] when the queue is full (nothing was checked).
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, Busy> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.to_string());
        match self.run(true, move |memory| verify_with(&password, &hash, memory)).await {
            Ok(ok) => Ok(ok && known),
            Err(e) if e.is::<Busy>() => Err(Busy),
            Err(_) => Ok(false),
        }
    }

    /// As [`Passwords::verify`], but waits its turn however long the queue: for checks a
    /// signed-in user's own change needs (the password history), never for sign-in.
    pub async fn verify_in_turn(&self, password: String, hash: String) -> bool {
        self.run(false, move |memory| verify_with(&password, &hash, memory)).await.unwrap_or(false)
    }

    /// Checks a password against a hash made with the parameters of new ones, on every worker
    /// at once and for about `duration`: the most password sign-ins a second this machine can
    /// take, which sign-ins under load are measured against. Twice as many checks as workers
    /// are kept in the queue, so no worker waits for the next (each of them at least one: a
    /// zero `duration` is one round); each worker's memory is allocated before the clock starts.
    pub async fn speed(&self, duration: Duration) -> anyhow::Result<Speed> {
        let hash = self.hash("a password to time the hash with".into()).await?;
        let check = |p: Passwords, hash: String| async move {
            p.verify_in_turn("a password to time the hash with".into(), hash).await
        };
        let warm = (0..self.workers).map(|_| tokio::spawn(check(self.clone(), hash.clone())));
        for w in warm.collect::<Vec<_>>() {
            w.await?;
        }
        let start = Instant::now();
        let loops = (0..2 * self.workers).map(|_| {
            let (p, hash) = (self.clone(), hash.clone());
            tokio::spawn(async move {
                let mut checks = 0u64;
                loop {
                    anyhow::ensure!(check(p.clone(), hash.clone()).await, "a password did not match its own hash");
                    checks += 1;
                    if start.elapsed() >= duration {
                        return Ok(checks);
                    }
                }
            })
        });
        let mut checks = 0;
        for l in loops.collect::<Vec<_>>() {
            checks += l.await??;
        }
        Ok(Speed { workers: self.workers, checks, elapsed: start.elapsed(), params: Params::default() })
    }
}

/// What [`Passwords::speed`] measured.
pub struct Speed {
    pub workers: usize,
    pub checks: u64,
    pub elapsed: Duration,
    /// argon2id's, those of new hashes.
    pub params: Params,
}

impl Speed {
    pub fn per_second(&self) -> f64 {
        self.checks as f64 / self.elapsed.as_secs_f64()
    }

    /// The time one check takes on one worker.
    pub fn ms_each(&self) -> f64 {
        self.workers as f64 * 1000.0 / self.per_second()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHasher, PasswordVerifier};

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let (params, default) = (Params::try_from(&dummy).unwrap(), Params::default());
        let cost = |p: &Params| (p.m_cost(), p.t_cost(), p.p_cost());
        assert_eq!(cost(&params), cost(&default));
        assert_eq!(dummy.hash.unwrap().len(), Params::DEFAULT_OUTPUT_LEN);
        assert_eq!(dummy.algorithm, Algorithm::Argon2id.ident());
        let real = hash_with("correct horse", &mut Memory::default()).unwrap();
        assert_eq!(PasswordHash::new(&real).unwrap().params, dummy.params);
    }

    #[test]
    fn hashes_are_standard_phc_argon2id_both_ways() {
        let mut memory = Memory::default();
        let ours = hash_with("correct horse", &mut memory).unwrap();
        assert!(ours.starts_with("$argon2id$v=19$"), "{ours}");
        assert!(Argon2::default().verify_password(b"correct horse", ours.as_str()).is_ok());
        let theirs = Argon2::default().hash_password(b"correct horse").unwrap().to_string();
        assert!(verify_with("correct horse", &theirs, &mut memory));
        assert!(!verify_with("wrong horse", &theirs, &mut memory));
        assert!(!verify_with("correct horse", "$argon2id$garbage", &mut memory));
    }

    #[test]
    fn memory_given_back_is_allocated_again() {
        let mut memory = Memory::default();
        let hash = hash_with("correct horse", &mut memory).unwrap();
        assert!(memory.blocks.capacity() >= OWN_MAPPING_BLOCKS, "a mapping of its own");
        memory.release();
        assert_eq!(memory.blocks.capacity(), 0);
        memory.release();
        assert!(!memory.freed, "the allocator was nudged once");
        assert!(verify_with("correct horse", &hash, &mut memory));
    }

    #[tokio::test]
    async fn unknown_users_are_refused_after_the_same_work() {
        let p = Passwords::new(1, 4);
        let hash = p.hash("correct horse".into()).await.unwrap();
        assert!(p.verify("correct horse".into(), Some(hash.clone())).await.unwrap());
        assert!(!p.verify("wrong".into(), Some(hash)).await.unwrap());
        assert!(!p.verify("not a real password".into(), None).await.unwrap(), "the dummy hash never admits anyone");
    }

    #[tokio::test]
    async fn past_the_queue_depth_work_is_refused_at_once() {
        let p = Passwords::new(1, 2);
        let all: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move { p.verify("x".into(), None).await })
            })
            .collect();
        let mut busy = 0;
        for r in all {
            busy += usize::from(r.await.unwrap().is_err());
        }
        assert!((1..8).contains(&busy), "some refused, some run: {busy} busy");
        assert!(p.verify("x".into(), None).await.is_ok(), "the queue drains");
    }
}
