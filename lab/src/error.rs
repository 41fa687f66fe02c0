//! What can go wrong running a lab, each with what a person needs to act on it.

use std::path::PathBuf;

/// A lab runner error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the catalogue could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A lab's file does not parse or validate.
    #[error("{}: {}", path.display(), problems.join("; "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Each problem, with its field path.
        problems: Vec<String>,
    },
    /// No lab has this id.
    #[error("lab {id:?} not found; known labs: {}", known.join(", "))]
    UnknownLab {
        /// What was asked for.
        id: String,
        /// The catalogue's ids.
        known: Vec<String>,
    },
    /// A command that needs a lab in progress found none.
    #[error("no lab in progress; start one with `netlab lab start ID` (`netlab lab list` shows them)")]
    NoLab,
    /// The cluster refused or failed an operation.
    #[error("{0}")]
    Live(String),
    /// Setting a lab up failed; the cluster was cleaned.
    #[error("lab {id:?} failed to set up: {why}")]
    Setup {
        /// The lab.
        id: String,
        /// What failed: a missing node, image, a fault that was refused, a state never reached.
        why: String,
    },
    /// The cluster lacks what the lab requires; nothing was changed.
    #[error(
        "lab {id:?} needs {needs}, which this cluster does not have (observed {observed}; expected {expected}): {otherwise}"
    )]
    Unsupported {
        /// The lab.
        id: String,
        /// The requirement's name.
        needs: String,
        /// What was seen.
        observed: String,
        /// What was wanted.
        expected: String,
        /// How to get a cluster that has it.
        otherwise: String,
    },
    /// A value cannot be drawn for the run.
    #[error("vars.{name}: {why}")]
    Var {
        /// The placeholder.
        name: String,
        /// Why.
        why: String,
    },
    /// `lab answer` got something unusable.
    #[error("{0}")]
    Answer(String),
}
