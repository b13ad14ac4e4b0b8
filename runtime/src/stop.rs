//! The process-wide stop request: set by SIGTERM/SIGINT, read by the step loop (stop after the
//! current step with a checkpoint) and by sink workers blocked on an outage (give up waiting).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The flag signal handlers set.
pub(crate) fn flag() -> &'static Arc<AtomicBool> {
    STOP.get_or_init(Default::default)
}

/// Whether a stop was requested.
pub(crate) fn requested() -> bool {
    STOP.get().is_some_and(|flag| flag.load(Ordering::Relaxed))
}
