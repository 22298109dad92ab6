//! Locks per storage key, for handlers that read an entry, change it and write it back.

use std::fmt;

use tokio::sync::{Mutex, MutexGuard};

/// A fixed set of async mutexes, one picked for each storage key by a hash of the key: the
/// Go SDK's `helper/locksutil` (256 locks, `LockForKey`, `LocksForKeys`).
///
/// # Why a backend needs it
///
/// The server sends a mount's requests concurrently, and the plugin runs them concurrently:
/// a handler gives way to the others at every `.await`, and every storage call is an
/// `.await` (a round trip to the server). So a handler that reads an entry, changes it and
/// writes it back (an update of some fields of a role, a counter, a list kept in one entry)
/// can read, give way to a second request that reads the same old entry, and then both
/// write: one of the two changes is lost, without an error. Holding the key's lock from
/// the read to the write makes the second request wait until the first has written, so it
/// reads the first one's result.
///
/// Take the lock in every handler that writes the key (create, update and delete alike),
/// before the read. Handlers that only read need none; a read between two writes sees one
/// or the other, as it would without locks.
///
/// # What it does not do
///
/// * It serialises the requests of one plugin process, which is where a mount's writes
///   happen: in a cluster, standbys forward writes to the active node. It is no lock in the
///   server's storage.
/// * Keys share locks (with 256 locks, two given keys share one with a chance of 1 in
///   256), so unrelated keys sometimes wait for each other; that costs time, never
///   correctness.
/// * Locks are not re-entrant: a task that holds the lock of one key and asks for the lock
///   of another may wait for itself, if both keys share a lock, or deadlock with a task
///   that does the reverse. A handler that needs several keys takes them in one call,
///   [`KeyedLocks::lock_many`], which takes the distinct locks in a fixed order.
///
/// # Example
///
/// A counter that handlers increment concurrently; without the lock, increments are lost.
///
/// ```
/// use std::sync::{Arc, LazyLock};
///
/// use serde_json::json;
/// use vault_plugin_sdk::backend::framework::{
///     FieldData, FieldSchema, FieldType, PathSpec, RoutedBackend, Router,
/// };
/// use vault_plugin_sdk::backend::{
///     Backend, Error, KeyedLocks, MemoryStorage, Operation, Request, Response, Storage,
/// };
///
/// struct Counters {
///     storage: Arc<dyn Storage>,
///     locks: KeyedLocks,
/// }
///
/// /// `write counters/<name>`: adds one to the counter and answers the new count.
/// async fn increment(
///     backend: &Counters,
///     _: &Request,
///     fields: &FieldData<'_>,
/// ) -> Result<Option<Response>, Error> {
///     let key = format!("counter/{}", fields.get_string("name"));
///     // Held until the handler returns: from the read to the write.
///     let _guard = backend.locks.lock(&key).await;
///     let count = backend.storage.get_json::<u64>(&key).await?.unwrap_or(0);
///     // In-memory storage answers at once; a real storage call gives way to other
///     // requests here, as this does.
///     tokio::task::yield_now().await;
///     backend.storage.put_json(&key, &(count + 1)).await?;
///     Response::from_serialize(&json!({ "count": count + 1 })).map(Some)
/// }
///
/// static ROUTER: LazyLock<Router<Counters>> = LazyLock::new(|| {
///     Router::new(
///         "Counts.",
///         vec![
///             PathSpec::new("counters/{name}")
///                 .field(FieldSchema::new("name", FieldType::String, "The counter."))
///                 .operation(Operation::Update, increment),
///         ],
///     )
/// });
///
/// impl RoutedBackend for Counters {
///     fn router(&self) -> &Router<Self> {
///         &ROUTER
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let counters = Arc::new(Counters {
///     storage: Arc::new(MemoryStorage::new()),
///     locks: KeyedLocks::new(),
/// });
/// // 50 requests at once, as the server may send them.
/// let mut requests = tokio::task::JoinSet::new();
/// for _ in 0..50 {
///     let counters = Arc::clone(&counters);
///     requests.spawn(async move {
///         counters
///             .handle_request(Request::new(Operation::Update, "counters/hits"))
///             .await
///     });
/// }
/// while let Some(answer) = requests.join_next().await {
///     answer.unwrap().unwrap();
/// }
/// // Every increment counted: none read a count that another was about to replace.
/// let stored = counters.storage.get_json::<u64>("counter/hits").await.unwrap();
/// assert_eq!(stored, Some(50));
/// # });
/// ```
pub struct KeyedLocks {
    locks: Box<[Mutex<()>]>,
}

/// The guard of one key's lock, from [`KeyedLocks::lock`]: the lock is held until it is
/// dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct KeyedLockGuard<'a> {
    _guard: MutexGuard<'a, ()>,
}

/// The guards of several keys' locks, from [`KeyedLocks::lock_many`]: they are held until it
/// is dropped.
#[must_use = "the locks are released as soon as the guard is dropped"]
pub struct KeyedLocksGuard<'a> {
    guards: Vec<MutexGuard<'a, ()>>,
}

impl KeyedLocks {
    /// The number of locks of [`KeyedLocks::new`], as Go's `locksutil.LockCount`.
    pub const DEFAULT_COUNT: usize = 256;

    /// [`KeyedLocks::DEFAULT_COUNT`] locks.
    pub fn new() -> Self {
        Self::with_count(Self::DEFAULT_COUNT)
    }

    /// `count` locks: more make unrelated keys wait for each other less often, and cost a
    /// few bytes each.
    ///
    /// # Panics
    ///
    /// If `count` is zero.
    pub fn with_count(count: usize) -> Self {
        assert!(count > 0, "KeyedLocks needs at least one lock");
        Self {
            locks: (0..count).map(|_| Mutex::new(())).collect(),
        }
    }

    /// How many locks there are.
    pub fn count(&self) -> usize {
        self.locks.len()
    }

    /// Which lock `key` takes, in `0..count()`: always the same for the same key and count,
    /// in every process.
    pub fn index(&self, key: &str) -> usize {
        lock_index(key, self.locks.len())
    }

    /// Waits for the lock of `key` and holds it until the guard is dropped. Cancel-safe: a
    /// caller that stops waiting holds nothing and loses its place in the queue (waiters
    /// are served first come, first served).
    ///
    /// Do not call it (nor [`KeyedLocks::lock_many`]) while holding a guard of the same
    /// `KeyedLocks`; see the type's documentation.
    pub async fn lock(&self, key: &str) -> KeyedLockGuard<'_> {
        KeyedLockGuard {
            _guard: self.locks[self.index(key)].lock().await,
        }
    }

    /// Waits for the locks of all `keys` and holds them until the guard is dropped. Each
    /// distinct lock is taken once, in increasing order of [`KeyedLocks::index`], so two
    /// callers whose keys overlap, in whatever order they list them, never deadlock. No keys
    /// take no lock.
    pub async fn lock_many<K: AsRef<str>>(&self, keys: &[K]) -> KeyedLocksGuard<'_> {
        let mut indices: Vec<usize> = keys.iter().map(|key| self.index(key.as_ref())).collect();
        indices.sort_unstable();
        indices.dedup();
        let mut guards = Vec::with_capacity(indices.len());
        for index in indices {
            guards.push(self.locks[index].lock().await);
        }
        KeyedLocksGuard { guards }
    }
}

impl Default for KeyedLocks {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for KeyedLocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLocks")
            .field("count", &self.locks.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for KeyedLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLockGuard").finish_non_exhaustive()
    }
}

impl fmt::Debug for KeyedLocksGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLocksGuard")
            .field("locks", &self.guards.len())
            .finish()
    }
}

/// The lock of `key` among `count`: a 64-bit FNV-1a hash of the key's bytes, its bits mixed
/// (FNV's low bits depend only on the low bits of each byte), scaled into `0..count`. Fixed
/// here rather than std's hasher, whose output may change between Rust releases.
fn lock_index(key: &str, count: usize) -> usize {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    // The finaliser of SplitMix64: every output bit depends on every input bit.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    // `hash * count / 2^64`: in `0..count`, each index as likely as with `%`, no division.
    let scaled = (u128::from(hash) * count as u128) >> 64;
    usize::try_from(scaled).unwrap_or(0)
}

#[cfg(test)]
mod tests;
