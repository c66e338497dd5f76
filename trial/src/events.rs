//! What the trial services announce once a change is committed, for the
//! parts of the process that act on it: the model's worker wakes when a
//! case's reads are locked or a model is pinned, instead of every handler
//! that might have caused it telling the worker itself.
//!
//! Announcements stay within one process. A worker in another process (a
//! second server on the same PostgreSQL database) finds the same work on
//! its periodic look at the queue; the database, not the announcement, is
//! what decides whether a case is ready.

use tokio::sync::broadcast;

/// A committed change others may act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Every assigned read of the case is signed: it waits for the AI.
    ReadsLocked { case_id: i64 },
    /// A model was pinned for the study.
    ModelPinned,
}

/// The process's announcements. Cheap to clone; a subscriber that falls
/// behind loses the oldest (it looks at the database anyway).
#[derive(Debug, Clone)]
pub struct Events(broadcast::Sender<Event>);

impl Default for Events {
    fn default() -> Self {
        Events(broadcast::channel(256).0)
    }
}

impl Events {
    /// Tells every subscriber (nobody listening is not an error).
    pub fn announce(&self, event: Event) {
        tracing::debug!(?event, "announced");
        let _ = self.0.send(event);
    }

    /// A receiver of the announcements made from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}
