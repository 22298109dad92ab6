//! A mutex that survives a panic in another holder.

use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

/// A mutex for state that a panic cannot leave half-changed: every critical section is one
/// assignment, one clone or one map operation. So the state is still good after a holder
/// panicked, and locking recovers from poisoning instead of spreading the panic.
#[derive(Debug, Default)]
pub(crate) struct RecoveringMutex<T>(Mutex<T>);

impl<T> RecoveringMutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock if it is free now (a poisoned one counts as free).
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}
