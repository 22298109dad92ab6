use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::*;
use crate::backend::{MemoryStorage, Storage};

/// How long a test that must not deadlock may take before it fails; it takes milliseconds.
const DEADLOCK_BOUND: Duration = Duration::from_secs(10);

/// Two keys that take different locks of `locks`.
fn keys_on_different_locks(locks: &KeyedLocks) -> (String, String) {
    let first = "user/0".to_owned();
    let second = (1..)
        .map(|i| format!("user/{i}"))
        .find(|key| locks.index(key) != locks.index(&first))
        .expect("another lock");
    (first, second)
}

#[test]
fn the_same_key_takes_the_same_lock_and_keys_spread_over_the_locks() {
    let locks = KeyedLocks::new();
    assert_eq!(locks.count(), 256);
    for key in ["", "a", "user/alice", "roles/web", "ü/€"] {
        let index = locks.index(key);
        assert!(index < 256);
        assert_eq!(locks.index(key), index, "{key}");
        // Another set of the same count picks the same lock: the hash is fixed.
        assert_eq!(KeyedLocks::new().index(key), index, "{key}");
    }
    // Fixed values (computed apart from this code), so that a change of the hash is seen.
    assert_eq!(locks.index("user/alice"), 246);
    assert_eq!(locks.index("roles/web"), 77);
    assert_eq!(locks.index(""), 245);
    assert_eq!(KeyedLocks::with_count(7).index("roles/web"), 2);

    let used: BTreeSet<usize> = (0..2000)
        .map(|i| locks.index(&format!("user/{i}")))
        .collect();
    // 2000 keys into 256 locks leave about 0.1 unused on average if the hash spreads them.
    assert!(used.len() >= 250, "only {} locks used", used.len());

    let one = KeyedLocks::with_count(1);
    assert_eq!(one.index("a"), 0);
    assert_eq!(one.index("b"), 0);
    let seven = KeyedLocks::with_count(7);
    let used: BTreeSet<usize> = (0..200).map(|i| seven.index(&i.to_string())).collect();
    assert_eq!(used, (0..7).collect());
}

#[test]
#[should_panic(expected = "at least one lock")]
fn zero_locks_are_refused() {
    let _ = KeyedLocks::with_count(0);
}

/// Reads the counter at `key`, gives way to the other tasks (as a storage round trip to
/// the server does), and writes it back plus one; under the key's lock if there are locks.
async fn increment(storage: &dyn Storage, locks: Option<&KeyedLocks>, key: &str) {
    let _guard = match locks {
        Some(locks) => Some(locks.lock(key).await),
        None => None,
    };
    let count: u64 = match storage.get(key).await.expect("get") {
        Some(bytes) => String::from_utf8(bytes)
            .expect("utf-8")
            .parse()
            .expect("a number"),
        None => 0,
    };
    tokio::task::yield_now().await;
    storage
        .put(key, (count + 1).to_string().into_bytes())
        .await
        .expect("put");
}

/// 100 increments of one key at once on the current thread's runtime, where tasks run in
/// turn: without locks every task reads before any writes (each gives way between its read
/// and its write), so the increments are lost deterministically.
async fn count_after_100_increments(locks: Option<KeyedLocks>) -> u64 {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let locks = locks.map(Arc::new);
    let mut tasks = JoinSet::new();
    for _ in 0..100 {
        let storage = Arc::clone(&storage);
        let locks = locks.clone();
        tasks.spawn(
            async move { increment(storage.as_ref(), locks.as_deref(), "counter/hits").await },
        );
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("the task");
    }
    let bytes = storage
        .get("counter/hits")
        .await
        .expect("get")
        .expect("a count");
    String::from_utf8(bytes)
        .expect("utf-8")
        .parse()
        .expect("a number")
}

#[tokio::test]
async fn read_modify_write_under_the_lock_loses_no_update() {
    assert_eq!(
        count_after_100_increments(Some(KeyedLocks::new())).await,
        100
    );
}

#[tokio::test]
async fn read_modify_write_without_a_lock_loses_updates() {
    let count = count_after_100_increments(None).await;
    // All 100 read 0 and write 1, as the runtime schedules now; fewer than 100 is the point.
    assert!(count < 100, "{count}");
}

/// Many threads, real parallelism: the lock still loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_modify_write_under_the_lock_loses_no_update_across_threads() {
    assert_eq!(
        count_after_100_increments(Some(KeyedLocks::new())).await,
        100
    );
}

/// Two tasks that each take two locks, listing the keys in opposite orders, again and again
/// while giving way with the locks held: with locks taken in the listed order they would
/// soon each hold one and wait for the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_many_with_keys_in_opposite_orders_does_not_deadlock() {
    let locks = Arc::new(KeyedLocks::new());
    let (a, b) = keys_on_different_locks(&locks);
    let c = "roles/web".to_owned();
    let mut tasks = JoinSet::new();
    for keys in [
        vec![a.clone(), b.clone()],
        vec![b.clone(), a.clone()],
        vec![c.clone(), b.clone(), a.clone()],
        vec![a, c, b],
    ] {
        let locks = Arc::clone(&locks);
        tasks.spawn(async move {
            for _ in 0..500 {
                let _guard = locks.lock_many(&keys).await;
                tokio::task::yield_now().await;
            }
        });
    }
    let all_done = async {
        while let Some(done) = tasks.join_next().await {
            done.expect("the task");
        }
    };
    tokio::time::timeout(DEADLOCK_BOUND, all_done)
        .await
        .expect("deadlocked");
}

/// Keys repeated or sharing a lock take that lock once: a task never waits for itself.
#[tokio::test]
async fn lock_many_takes_a_shared_lock_once() {
    let locks = KeyedLocks::with_count(1);
    let all = async {
        let guard = locks.lock_many(&["a", "b", "a"]).await;
        assert_eq!(format!("{guard:?}"), "KeyedLocksGuard { locks: 1 }");
        drop(guard);
        let none: [&str; 0] = [];
        let guard = locks.lock_many(&none).await;
        assert_eq!(format!("{guard:?}"), "KeyedLocksGuard { locks: 0 }");
        // Held by nobody now.
        drop(locks.lock("c").await);
    };
    tokio::time::timeout(DEADLOCK_BOUND, all)
        .await
        .expect("deadlocked");
}

/// A key's lock keeps out the lock of the same key, and of any key that shares the lock,
/// until the guard is dropped; `lock_many` waits for any one of its locks.
#[tokio::test]
async fn a_held_lock_keeps_others_of_that_lock_waiting_until_dropped() {
    let locks = KeyedLocks::new();
    let (a, b) = keys_on_different_locks(&locks);
    let guard = locks.lock(&a).await;
    // Another key's lock is free meanwhile.
    drop(locks.lock(&b).await);
    {
        let waiting = std::pin::pin!(locks.lock(&a));
        assert!(
            futures_poll_once(waiting).await.is_none(),
            "lock of a held key"
        );
        let both = [b.as_str(), a.as_str()];
        let waiting = std::pin::pin!(locks.lock_many(&both));
        assert!(
            futures_poll_once(waiting).await.is_none(),
            "lock_many with a held key"
        );
    }
    drop(guard);
    drop(locks.lock(&a).await);
    drop(locks.lock_many(&[&b, &a]).await);
}

/// Polls `future` once: its output if it is ready at once.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut future: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

/// Handler futures must be `Send`, and they hold guards across `.await`s.
#[test]
fn guards_and_the_futures_that_take_them_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let locks = KeyedLocks::new();
    is_send(&locks.lock("a"));
    is_send(&locks.lock_many(&["a", "b"]));
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<KeyedLocks>();
    send_and_sync::<KeyedLockGuard<'static>>();
    send_and_sync::<KeyedLocksGuard<'static>>();
}
