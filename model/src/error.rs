//! Why a model operation failed. Every fallible function of the crate
//! returns [`ModelError`]; its text is what the command line and the server
//! log show.

use std::path::{Path, PathBuf};

/// A model operation's failure, by what failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A file or directory at `path` could not be read, written or parsed.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// A model directory does not match its card, or its card is missing.
    #[error("{0}")]
    Card(String),
    /// A network configuration the network cannot be built from.
    #[error("{0}")]
    Config(String),
    /// A backend that is not built in, or a tensor or record operation of
    /// the backend that failed.
    #[error("{0}")]
    Backend(String),
    /// A manifest of cases (CSV) that is wrong, by line.
    #[error("{0}")]
    Manifest(String),
    /// A radiograph that cannot be read, decoded or made (DICOM, PNG).
    #[error("{0}")]
    Image(String),
    /// A clinical code outside the model's vocabulary.
    #[error("{0}")]
    Vocabulary(String),
    /// Training that cannot start or go on (the data, the saved state).
    #[error("{0}")]
    Training(String),
    /// A run that gave no usable output (a missing gradient or heat map).
    #[error("{0}")]
    Output(String),
}

impl ModelError {
    /// A failure at `path`, with the underlying error's text.
    pub fn file(path: &Path, e: impl std::fmt::Display) -> ModelError {
        ModelError::File {
            path: path.to_owned(),
            message: e.to_string(),
        }
    }

    /// A backend's failure (burn's errors show best in their `Debug` form).
    pub fn backend(e: impl std::fmt::Debug) -> ModelError {
        ModelError::Backend(format!("{e:?}"))
    }
}

impl From<crate::pixels::PixelError> for ModelError {
    fn from(e: crate::pixels::PixelError) -> Self {
        ModelError::Image(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_error_names_the_file() {
        let e = ModelError::file(Path::new("/models/x/card.json"), "no such file");
        assert_eq!(e.to_string(), "/models/x/card.json: no such file");
        assert!(matches!(e, ModelError::File { .. }));
        assert_eq!(ModelError::backend("Oom").to_string(), "\"Oom\"");
    }
}
