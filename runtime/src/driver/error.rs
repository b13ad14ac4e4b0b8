//! How a run fails: the error every part of the driver returns, and the exit code it maps to.

/// A failed run. The message says what went wrong and what to do; `main` logs it and exits with
/// [`RunError::exit_code`].
#[derive(Debug, thiserror::Error)]
pub(super) enum RunError {
    /// Bad command line or configuration: exit code 2.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing failed: exit code 1.
    #[error("{0}")]
    Io(String),
    /// The checkpoint or savepoint holds state this pipeline cannot read: exit code 2.
    #[error(transparent)]
    Incompatible(#[from] crate::checkpoint::IncompatibleState),
    /// The checkpoint is not this run's: another pipeline, input or output (exit code 2).
    #[error(transparent)]
    Resume(#[from] crate::resume::ResumeError),
    /// An `--input` or `--dead-letter` that names no place (exit code 2).
    #[error(transparent)]
    Place(#[from] crate::cli::PlaceError),
    /// Kafka failed (exit code 1), or its settings are wrong (exit code 2).
    #[error(transparent)]
    Kafka(#[from] crate::kafka::Error),
    /// RocksDB failed: exit code 1.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

impl RunError {
    /// 2 for usage and configuration errors, 1 for I/O errors.
    pub(super) fn exit_code(&self) -> u8 {
        match self {
            RunError::Usage(_) | RunError::Incompatible(_) | RunError::Resume(_) | RunError::Place(_) => 2,
            RunError::Kafka(error) if error.is_setting() => 2,
            RunError::Io(_) | RunError::State(_) | RunError::Kafka(_) => 1,
        }
    }
}
