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
}

impl RunError {
    /// 2 for usage and configuration errors, 1 for I/O errors.
    pub(super) fn exit_code(&self) -> u8 {
        match self {
            RunError::Usage(_) => 2,
            RunError::Io(_) => 1,
        }
    }
}
