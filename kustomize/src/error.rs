//! The error of a build: what went wrong, and which file it concerns.
//!
//! Every variant names the file or directory a person has to look at. Errors of the other modules
//! (patches, generators, replacements, transformers) are wrapped with the kustomization they came
//! from.

use std::path::PathBuf;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A path named by a kustomization does not exist.
    #[error("{}: '{reference}' does not exist ({})", kustomization.display(), path.display())]
    NotFound {
        /// The kustomization file that names it.
        kustomization: PathBuf,
        /// The reference as written in the kustomization.
        reference: String,
        /// The resolved path.
        path: PathBuf,
    },

    /// A YAML file is not well-formed.
    #[error("malformed YAML in {}{}: {message}", path.display(), location(*line, *column))]
    MalformedYaml {
        /// The file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// What the parser said.
        message: String,
    },

    /// A YAML document is not a Kubernetes object (not a mapping, or no `kind`/`metadata.name`).
    #[error("{}: {message}", path.display())]
    InvalidResource {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A kustomization file does not fit the schema (an unknown field, a wrong type, ...).
    #[error("invalid kustomization {}{}: {message}", path.display(), location(*line, *column))]
    InvalidKustomization {
        /// The kustomization file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// What is wrong (names the field).
        message: String,
    },

    /// A directory has no kustomization file.
    #[error(
        "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{}'",
        dir.display()
    )]
    MissingKustomization {
        /// The directory.
        dir: PathBuf,
    },

    /// A directory has more than one kustomization file.
    #[error("found multiple kustomization files under {}: {}", dir.display(), names.join(", "))]
    MultipleKustomizations {
        /// The directory.
        dir: PathBuf,
        /// The file names found.
        names: Vec<String>,
    },

    /// A resource, component or base is a remote URL.
    #[error(
        "{}: remote bases are not supported ('{reference}'); vendor them into the repository",
        kustomization.display()
    )]
    RemoteNotSupported {
        /// The kustomization file that names it.
        kustomization: PathBuf,
        /// The URL as written.
        reference: String,
    },

    /// A path leaves the kustomization root while the load restrictor forbids it.
    #[error(
        "{}: security; file '{}' is not in or below '{}' (allow it with --load-restrictor LoadRestrictionsNone)",
        kustomization.display(),
        path.display(),
        root.display()
    )]
    OutsideRoot {
        /// The kustomization file that names it.
        kustomization: PathBuf,
        /// The path asked for.
        path: PathBuf,
        /// The kustomization root it must stay in.
        root: PathBuf,
    },

    /// Kustomizations refer to each other in a loop.
    #[error("cycle in kustomizations: {}", chain.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" -> "))]
    Cycle {
        /// The directories of the loop, the first one repeated at the end.
        chain: Vec<PathBuf>,
    },

    /// Two objects have the same group, version, kind, namespace and name.
    #[error(
        "may not add resource with an already registered id: {id} (from {second}; first from {first})"
    )]
    DuplicateId {
        /// The identity.
        id: String,
        /// Where the object already in the build came from.
        first: String,
        /// Where the new object came from.
        second: String,
    },

    /// A kustomization uses a feature this engine does not implement.
    #[error("{}: '{field}' is not supported{}", kustomization.display(), hint_suffix(hint))]
    NotSupported {
        /// The kustomization file.
        kustomization: PathBuf,
        /// The field.
        field: String,
        /// What to do instead, if anything.
        hint: Option<String>,
    },

    /// A kustomization is valid YAML but its content is wrong (a bad kind, a component used as a
    /// resource, a patch with no content, ...).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The kustomization file or directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The output could not be serialised.
    #[error("cannot serialise the output")]
    Serialize(#[source] serde_yaml::Error),

    /// A step of a kustomization failed (a patch, a generator, a replacement, a transformer).
    #[error("{}: {step}", kustomization.display())]
    Step {
        /// The kustomization file.
        kustomization: PathBuf,
        /// Which step.
        step: &'static str,
        /// The step's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" (line {line}, column {column})"),
        (Some(line), None) => format!(" (line {line})"),
        _ => String::new(),
    }
}

fn hint_suffix(hint: &Option<String>) -> String {
    match hint {
        Some(hint) => format!("; {hint}"),
        None => String::new(),
    }
}

impl Error {
    /// Wraps the error of a build step with the kustomization it ran for.
    pub fn step(
        kustomization: impl Into<PathBuf>,
        step: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Step {
            kustomization: kustomization.into(),
            step,
            source: Box::new(source),
        }
    }
}
