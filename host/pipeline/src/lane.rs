//! Which integration's work a task is doing, for the store's writer turns.
//!
//! The embedded store hands its one writer out round robin by lane
//! ([`proofpix_store::in_write_lane`]) so that one integration's backlog cannot hold back
//! another's commits. Store calls run on the blocking pool, away from the task that knows the
//! integration; [`in_lane`] marks a task's future with it and [`run_in_lane`] carries it onto
//! the blocking thread.

use std::future::Future;

tokio::task_local! {
    static LANE: String;
}

/// Runs `fut` with its store writes in `lane` (an integration id).
pub async fn in_lane<F: Future>(lane: &str, fut: F) -> F::Output {
    LANE.scope(lane.to_string(), fut).await
}

/// The lane of the calling task, if it runs inside [`in_lane`].
pub fn current_lane() -> Option<String> {
    LANE.try_with(Clone::clone).ok()
}

/// Runs `f` (on a blocking thread) with its store writes in `lane`, when there is one.
pub fn run_in_lane<T>(lane: Option<String>, f: impl FnOnce() -> T) -> T {
    match lane {
        Some(lane) => proofpix_store::in_write_lane(&lane, f),
        None => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_lane_follows_the_future_and_ends_with_it() {
        assert_eq!(current_lane(), None);
        let inside = in_lane("slack", async { current_lane() }).await;
        assert_eq!(inside.as_deref(), Some("slack"));
        assert_eq!(current_lane(), None);
    }
}
