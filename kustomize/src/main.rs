//! `ferroflux-kustomize build DIR`: builds a kustomization and prints its objects as a YAML
//! stream, like `kubectl kustomize DIR`. Errors go to stderr with a non-zero exit status.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ferroflux_kustomize::{BuildOptions, LoadRestrictions, build, to_yaml};

#[derive(Parser)]
#[command(
    name = "ferroflux-kustomize",
    version,
    about = "A native kustomize engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the kustomization in DIR and print its objects as a YAML stream.
    Build {
        /// The directory holding the kustomization file.
        dir: PathBuf,
        /// Whether files outside a kustomization's own directory may be read.
        #[arg(long, value_enum, default_value_t = Restrictor::LoadRestrictionsRootOnly)]
        load_restrictor: Restrictor,
        /// When DIR has no kustomization file, build one from the YAML files below it (as Flux
        /// does) instead of failing (as kubectl does).
        #[arg(long)]
        generate_missing_kustomization: bool,
        /// Fail when a `patches` entry's target picks no object (kubectl ignores such a patch).
        #[arg(long)]
        fail_on_unmatched_patch: bool,
    },
}

/// The values of `--load-restrictor`, spelled as kustomize spells them.
#[derive(Clone, Copy, ValueEnum)]
#[allow(clippy::enum_variant_names)]
enum Restrictor {
    /// Only files in or below the kustomization's directory.
    #[value(name = "LoadRestrictionsRootOnly")]
    LoadRestrictionsRootOnly,
    /// Any file.
    #[value(name = "LoadRestrictionsNone")]
    LoadRestrictionsNone,
}

fn main() -> ExitCode {
    let Command::Build {
        dir,
        load_restrictor,
        generate_missing_kustomization,
        fail_on_unmatched_patch,
    } = Cli::parse().command;
    let options = BuildOptions {
        load_restrictions: match load_restrictor {
            Restrictor::LoadRestrictionsRootOnly => LoadRestrictions::RootOnly,
            Restrictor::LoadRestrictionsNone => LoadRestrictions::None,
        },
        generate_missing_kustomization,
        fail_on_unmatched_patch_target: fail_on_unmatched_patch,
        ..BuildOptions::default()
    };
    let yaml = match build(&dir, &options).and_then(|objects| to_yaml(&objects)) {
        Ok(yaml) => yaml,
        Err(err) => {
            let mut message = format!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(yaml.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not our failure.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: writing the output: {err}");
            ExitCode::FAILURE
        }
    }
}
