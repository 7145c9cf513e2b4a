//! Whether the webhook writer (`ingest::intake`) is running, as `/readyz` reports it: the
//! writer's supervisor records each state change here, and handlers and the readiness check
//! read it without waiting for the writer.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// The writer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterState {
    /// Never started: nothing would ever answer a delivery.
    NotStarted,
    /// Taking and committing deliveries.
    Running,
    /// It panicked and its supervisor restarts it shortly; deliveries wait in its queue.
    Restarting,
    /// Stopped (shutdown) or its thread ended.
    Stopped,
}

impl WriterState {
    fn from_u8(v: u8) -> WriterState {
        match v {
            1 => WriterState::Running,
            2 => WriterState::Restarting,
            3 => WriterState::Stopped,
            _ => WriterState::NotStarted,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            WriterState::NotStarted => 0,
            WriterState::Running => 1,
            WriterState::Restarting => 2,
            WriterState::Stopped => 3,
        }
    }

    /// Why webhooks cannot be stored now, or None while the writer runs.
    pub fn problem(self) -> Option<&'static str> {
        match self {
            WriterState::Running => None,
            WriterState::NotStarted => Some("the webhook writer has not started"),
            WriterState::Restarting => Some("the webhook writer failed and is restarting"),
            WriterState::Stopped => Some("the webhook writer is stopped"),
        }
    }

    /// Whether a delivery handed over now can still be answered: queued deliveries wait out a
    /// restart, but nobody will ever take them from a writer that never started or stopped.
    pub fn accepts(self) -> bool {
        matches!(self, WriterState::Running | WriterState::Restarting)
    }
}

#[derive(Debug, Default)]
pub struct WriterHealth {
    state: AtomicU8,
    restarts: AtomicU64,
}

impl WriterHealth {
    pub fn state(&self) -> WriterState {
        WriterState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Times the writer was restarted after a panic since the process started.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    pub(super) fn set(&self, state: WriterState) {
        self.state.store(state.as_u8(), Ordering::Release);
    }

    pub(super) fn failed(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.set(WriterState::Restarting);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_running_writer_is_ready_and_a_restarting_one_still_accepts() {
        let h = WriterHealth::default();
        assert_eq!(h.state(), WriterState::NotStarted);
        assert!(!h.state().accepts() && h.state().problem().is_some());
        h.set(WriterState::Running);
        assert!(h.state().accepts() && h.state().problem().is_none());
        h.failed();
        assert_eq!((h.state(), h.restarts()), (WriterState::Restarting, 1));
        assert!(h.state().accepts() && h.state().problem().is_some());
        h.set(WriterState::Stopped);
        assert!(!h.state().accepts() && h.state().problem().is_some());
    }
}
