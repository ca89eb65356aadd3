//! Reproducible `.tar.gz` archives of a directory.
//!
//! The digest of an archive depends only on the content that goes into it: the same files
//! give the same bytes whichever machine, user, umask or checkout time produced them.
//!
//! # Format
//!
//! - Entries are written depth first, each directory's children sorted by the bytes of their
//!   names, a directory's entry before its content. The root itself has no entry. Paths are
//!   relative, `/`-separated, directories end with `/`; paths or symlink targets of 100 bytes
//!   or more use GNU long-name entries.
//! - Every header has owner and group 0, empty owner and group names, modification time 0;
//!   modes are `0755` for directories and for files with any executable bit, `0644` for other
//!   files, `0777` for symlinks.
//! - Directories are archived even when empty (Flux does the same). A directory that the
//!   filter excludes, but with content a negation pattern brings back, gets an entry too, so
//!   every entry's parent is in the archive.
//! - Regular files are archived with their content (a hard-linked file is archived as an
//!   ordinary file at each of its paths). Sockets, FIFOs and devices are skipped.
//! - Symlinks are archived as symlinks when they point inside the tree; see below.
//! - `.git` directories are never archived or even read, whatever the filter says.
//! - gzip at level 6, with a header that has no file name, no modification time and the
//!   "unknown" operating system byte (255). The compressed bytes also depend on the deflate
//!   implementation; a given Ferroflux build always produces the same bytes.
//!
//! # Symlinks
//!
//! A symlink is archived only when its target stays inside the tree, because consumers
//! refuse anything else (see `toolkit_sdk::artifact_fetch`):
//!
//! - a relative target whose `..` components all come first and do not climb above the root
//!   is kept as written (it may dangle);
//! - a target with `..` after a name (`a/../b`) is rewritten in the shortest relative form
//!   when every directory it climbs out of is a real directory of the tree; if one is a
//!   symlink or missing, archiving fails with [`ArchiveError::SymlinkUnresolvable`];
//! - an absolute target, or one that climbs above the root, fails with
//!   [`ArchiveError::SymlinkOutside`].
//!
//! Symlinks are never followed while archiving. This differs from Flux, which leaves every
//! symlink out of the archive silently.

use std::cell::{Cell, RefCell};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::{Compression, GzBuilder};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};
use tempfile::TempPath;
use toolkit_sdk::artifact_fetch::FetchLimits;

use super::ignore::Filter;

/// Mode of directories in an archive.
const DIR_MODE: u32 = 0o755;
/// Mode of files with an executable bit in an archive.
const EXEC_MODE: u32 = 0o755;
/// Mode of other files in an archive.
const FILE_MODE: u32 = 0o644;
/// Mode of symlinks in an archive.
const SYMLINK_MODE: u32 = 0o777;
/// gzip compression level.
const GZIP_LEVEL: u32 = 6;
/// The gzip header's operating system byte: unknown.
const GZIP_OS_UNKNOWN: u8 = 255;
/// Prefix of staged archive files (hidden, so never served or garbage collected as
/// artifacts).
pub(crate) const STAGING_PREFIX: &str = ".staging-";

/// Limits on what [`archive_dir`] produces.
///
/// The defaults are the limits `toolkit_sdk::artifact_fetch::FetchLimits` applies by
/// default, so every archive within them can be fetched by a consumer with default limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Largest compressed archive, in bytes. Default 512 MiB.
    pub max_archive_bytes: u64,
    /// Largest total size of the archived files' content, in bytes. Default 2 GiB.
    pub max_content_bytes: u64,
    /// Largest number of entries (files, directories, symlinks). Default 100 000.
    pub max_entries: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_archive_bytes: FetchLimits::DEFAULT_MAX_DOWNLOAD_BYTES,
            max_content_bytes: FetchLimits::DEFAULT_MAX_EXTRACTED_BYTES,
            max_entries: FetchLimits::DEFAULT_MAX_ENTRIES,
        }
    }
}

impl ArchiveLimits {
    /// Limits for archives of at most `max_archive_bytes`, with content up to four times that
    /// (the default ratio) and the default entry count.
    pub fn for_max_size(max_archive_bytes: u64) -> Self {
        Self {
            max_archive_bytes,
            max_content_bytes: max_archive_bytes.saturating_mul(4),
            ..Self::default()
        }
    }
}

/// Why a directory could not be archived.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The source path is not a directory.
    #[error("cannot archive {path}: not a directory")]
    NotADirectory {
        /// The source path.
        path: PathBuf,
    },
    /// A symlink points outside the tree (absolute, or climbing above the root).
    #[error("symlink {path} points outside the repository (target {target})")]
    SymlinkOutside {
        /// The symlink, relative to the root.
        path: String,
        /// Its target.
        target: String,
    },
    /// A symlink's target goes through something that is not a directory of the tree, so
    /// where it points cannot be decided safely.
    #[error(
        "symlink {path} has a target that cannot be resolved inside the repository (target {target}): {reason}"
    )]
    SymlinkUnresolvable {
        /// The symlink, relative to the root.
        path: String,
        /// Its target.
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The compressed archive would be larger than [`ArchiveLimits::max_archive_bytes`].
    #[error("the artifact would be larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The files add up to more than [`ArchiveLimits::max_content_bytes`].
    #[error("the files to archive add up to more than the limit of {limit} bytes")]
    ContentTooLarge {
        /// The limit.
        limit: u64,
    },
    /// There are more than [`ArchiveLimits::max_entries`] entries.
    #[error("more than {limit} files, directories and symlinks to archive")]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// A file was modified, replaced or truncated while it was being archived.
    #[error("{path} changed while it was being archived")]
    Changed {
        /// The file, relative to the root.
        path: String,
    },
    /// Reading the tree or writing the archive failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl ArchiveError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// A finished archive (or copied file), staged in a hidden temporary file until it is stored
/// with [`ObjectLock::store`](super::ObjectLock::store). Dropping it removes the file.
#[derive(Debug)]
pub struct Archive {
    temp: TempPath,
    digest: String,
    size: u64,
    entries: Option<u64>,
}

impl Archive {
    /// Where the staged file is.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// Its digest, `sha256:<hex>`.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of archive entries, or `None` for a file staged with
    /// [`from_reader`](Self::from_reader).
    pub fn entries(&self) -> Option<u64> {
        self.entries
    }

    pub(crate) fn into_temp_path(self) -> TempPath {
        self.temp
    }

    /// Stages the bytes of `reader` as they are (for artifacts that are already an archive,
    /// such as an OCI layer stored with the `copy` operation), in a hidden temporary file in
    /// `staging_dir`.
    ///
    /// # Errors
    ///
    /// [`ArchiveError::TooLarge`] past `max_bytes`, [`ArchiveError::Io`] otherwise.
    pub fn from_reader(
        mut reader: impl Read,
        staging_dir: &Path,
        max_bytes: u64,
    ) -> Result<Self, ArchiveError> {
        let (file, temp) = staging_file(staging_dir)?;
        let over_limit = Rc::new(Cell::new(false));
        let mut sink = Sink::new(file, max_bytes, Rc::clone(&over_limit));
        if let Err(e) = io::copy(&mut reader, &mut sink) {
            if over_limit.get() {
                return Err(ArchiveError::TooLarge { limit: max_bytes });
            }
            return Err(ArchiveError::io("cannot stage the artifact", e));
        }
        let (digest, size) = sink.finish()?;
        Ok(Self {
            temp,
            digest,
            size,
            entries: None,
        })
    }
}

/// Archives the directory `src` as a reproducible `.tar.gz` (see the module documentation),
/// leaving out what `filter` excludes, into a hidden temporary file in `staging_dir`.
///
/// The tree is streamed: only one file's copy buffer is in memory at a time. This blocks;
/// call it from `tokio::task::spawn_blocking` in async code.
///
/// # Errors
///
/// An [`ArchiveError`]; no file is left behind in `staging_dir`.
pub fn archive_dir(
    src: &Path,
    filter: &Filter,
    limits: &ArchiveLimits,
    staging_dir: &Path,
) -> Result<Archive, ArchiveError> {
    match fs::metadata(src) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(ArchiveError::NotADirectory {
                path: src.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(ArchiveError::io(
                format!("cannot archive {}", src.display()),
                e,
            ));
        }
    }
    let (file, temp) = staging_file(staging_dir)?;
    let over_limit = Rc::new(Cell::new(false));
    let sink = Sink::new(file, limits.max_archive_bytes, Rc::clone(&over_limit));
    let gzip = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(sink, Compression::new(GZIP_LEVEL));
    let mut archiver = Archiver {
        root: src,
        filter,
        prune_excluded_dirs: !filter.has_inclusions(),
        limits,
        builder: tar::Builder::new(gzip),
        over_limit,
        entries: 0,
        content_bytes: 0,
        path: Vec::new(),
        dir_written: Vec::new(),
    };
    archiver.walk()?;
    let entries = archiver.entries;
    let Archiver {
        builder,
        over_limit,
        ..
    } = archiver;
    let finished = builder
        .into_inner()
        .and_then(flate2::write::GzEncoder::finish);
    let sink = match finished {
        Ok(sink) => sink,
        Err(_) if over_limit.get() => {
            return Err(ArchiveError::TooLarge {
                limit: limits.max_archive_bytes,
            });
        }
        Err(e) => return Err(ArchiveError::io("cannot write the artifact", e)),
    };
    let (digest, size) = sink.finish()?;
    Ok(Archive {
        temp,
        digest,
        size,
        entries: Some(entries),
    })
}

/// Creates a hidden temporary file in `dir`, readable by all (like the stored artifacts).
fn staging_file(dir: &Path) -> Result<(File, TempPath), ArchiveError> {
    let named = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| {
            ArchiveError::io(
                format!("cannot create a temporary file in {}", dir.display()),
                e,
            )
        })?;
    Ok(named.into_parts())
}

/// The end of the pipeline: the staged file, hashed and counted on the way, failing once
/// more than `limit` bytes are written.
struct Sink {
    file: BufWriter<File>,
    hasher: Sha256,
    written: u64,
    limit: u64,
    over_limit: Rc<Cell<bool>>,
}

impl Sink {
    fn new(file: File, limit: u64, over_limit: Rc<Cell<bool>>) -> Self {
        Self {
            file: BufWriter::with_capacity(64 * 1024, file),
            hasher: Sha256::new(),
            written: 0,
            limit,
            over_limit,
        }
    }

    /// Flushes and syncs the file; returns the digest and size.
    fn finish(self) -> Result<(String, u64), ArchiveError> {
        let write_error = |e| ArchiveError::io("cannot write the artifact", e);
        let file = self
            .file
            .into_inner()
            .map_err(|e| write_error(e.into_error()))?;
        file.sync_all().map_err(write_error)?;
        Ok((
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.written,
        ))
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if self.written.saturating_add(len) > self.limit {
            self.over_limit.set(true);
            return Err(io::Error::other("artifact size limit exceeded"));
        }
        self.file.write_all(buf)?;
        self.hasher.update(buf);
        self.written += len;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Reads exactly `remaining` bytes of a file, remembering why it failed if it did (the tar
/// writer reports reader and writer errors alike).
struct ExactReader<'a> {
    file: File,
    remaining: u64,
    failure: &'a RefCell<Option<ArchiveError>>,
    shown: &'a str,
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let max = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        match self.file.read(&mut buf[..max]) {
            Ok(0) => {
                *self.failure.borrow_mut() = Some(ArchiveError::Changed {
                    path: self.shown.to_owned(),
                });
                Err(io::Error::from(io::ErrorKind::UnexpectedEof))
            }
            Ok(n) => {
                self.remaining -= u64::try_from(n).unwrap_or(u64::MAX);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                *self.failure.borrow_mut() =
                    Some(ArchiveError::io(format!("cannot read {}", self.shown), e));
                Err(io::Error::from(kind))
            }
        }
    }
}

struct Archiver<'a, W: Write> {
    root: &'a Path,
    filter: &'a Filter,
    /// Without negation patterns, nothing below an excluded directory can be included.
    prune_excluded_dirs: bool,
    limits: &'a ArchiveLimits,
    builder: tar::Builder<W>,
    over_limit: Rc<Cell<bool>>,
    entries: u64,
    content_bytes: u64,
    /// Components of the path being visited, relative to the root.
    path: Vec<OsString>,
    /// For each directory in `path`, whether its entry has been written.
    dir_written: Vec<bool>,
}

impl<W: Write> Archiver<'_, W> {
    fn walk(&mut self) -> Result<(), ArchiveError> {
        let dir = self.root.join(self.rel_path());
        let shown_dir = self.shown();
        let read_error = |e| {
            ArchiveError::io(
                format!(
                    "cannot read directory {}",
                    if shown_dir.is_empty() {
                        "."
                    } else {
                        &shown_dir
                    }
                ),
                e,
            )
        };
        let mut children = Vec::new();
        for entry in fs::read_dir(&dir).map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            let file_type = entry.file_type().map_err(read_error)?;
            children.push((entry.file_name(), file_type));
        }
        children.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

        for (name, file_type) in children {
            if file_type.is_dir() && name == ".git" {
                continue;
            }
            self.path.push(name);
            let result = if file_type.is_dir() {
                self.visit_dir()
            } else if file_type.is_file() {
                self.visit_file()
            } else if file_type.is_symlink() {
                self.visit_symlink()
            } else {
                Ok(())
            };
            self.path.pop();
            result?;
        }
        Ok(())
    }

    fn visit_dir(&mut self) -> Result<(), ArchiveError> {
        let excluded = self.is_excluded(true);
        self.dir_written.push(false);
        let result = (|| {
            if !excluded {
                self.write_parents(self.path.len())?;
            }
            if !excluded || !self.prune_excluded_dirs {
                self.walk()?;
            }
            Ok(())
        })();
        self.dir_written.pop();
        result
    }

    fn visit_file(&mut self) -> Result<(), ArchiveError> {
        if self.is_excluded(false) {
            return Ok(());
        }
        let shown = self.shown();
        let full = self.root.join(self.rel_path());
        let before = fs::symlink_metadata(&full)
            .map_err(|e| ArchiveError::io(format!("cannot read {shown}"), e))?;
        let file =
            File::open(&full).map_err(|e| ArchiveError::io(format!("cannot read {shown}"), e))?;
        let meta = file
            .metadata()
            .map_err(|e| ArchiveError::io(format!("cannot read {shown}"), e))?;
        // The path may have been swapped (for a symlink, say) between listing and opening.
        if !meta.is_file() || meta.dev() != before.dev() || meta.ino() != before.ino() {
            return Err(ArchiveError::Changed { path: shown });
        }
        let size = meta.len();
        if size
            > self
                .limits
                .max_content_bytes
                .saturating_sub(self.content_bytes)
        {
            return Err(ArchiveError::ContentTooLarge {
                limit: self.limits.max_content_bytes,
            });
        }
        self.content_bytes += size;
        self.write_parents(self.path.len().saturating_sub(1))?;
        self.count_entry()?;

        let mode = if meta.mode() & 0o111 != 0 {
            EXEC_MODE
        } else {
            FILE_MODE
        };
        let mut header = new_header(EntryType::Regular, mode);
        header.set_size(size);
        let failure = RefCell::new(None);
        let mut reader = ExactReader {
            file,
            remaining: size,
            failure: &failure,
            shown: &shown,
        };
        let result = self
            .builder
            .append_data(&mut header, self.rel_path(), &mut reader);
        if let Some(err) = failure.into_inner() {
            return Err(err);
        }
        self.written(result)
    }

    fn visit_symlink(&mut self) -> Result<(), ArchiveError> {
        if self.is_excluded(false) {
            return Ok(());
        }
        let shown = self.shown();
        let full = self.root.join(self.rel_path());
        let target = fs::read_link(&full)
            .map_err(|e| ArchiveError::io(format!("cannot read symlink {shown}"), e))?;
        let target = self.checked_target(&shown, target.as_os_str())?;
        self.write_parents(self.path.len().saturating_sub(1))?;
        self.count_entry()?;
        let mut header = new_header(EntryType::Symlink, SYMLINK_MODE);
        header.set_size(0);
        let result = self
            .builder
            .append_link(&mut header, self.rel_path(), &target);
        self.written(result)
    }

    /// The symlink target to archive for the symlink at `self.path`: as written when
    /// consumers accept it, else rewritten; refused when it leaves the tree.
    fn checked_target(&self, shown: &str, target: &OsStr) -> Result<PathBuf, ArchiveError> {
        let bytes = target.as_bytes();
        let shown_target = || String::from_utf8_lossy(bytes).into_owned();
        if bytes.first() == Some(&b'/') {
            return Err(ArchiveError::SymlinkOutside {
                path: shown.to_owned(),
                target: shown_target(),
            });
        }
        if bytes.is_empty() {
            return Err(ArchiveError::SymlinkUnresolvable {
                path: shown.to_owned(),
                target: String::new(),
                reason: "the target is empty".into(),
            });
        }
        let link_dir = &self.path[..self.path.len() - 1];
        let mut resolved: Vec<OsString> = link_dir.to_vec();
        // Whether the target is already in the form consumers accept: `..` only first.
        let mut plain = true;
        let mut named = false;
        for component in bytes.split(|&b| b == b'/') {
            match component {
                b"" | b"." => {}
                b".." => {
                    plain &= !named;
                    if resolved.is_empty() {
                        return Err(ArchiveError::SymlinkOutside {
                            path: shown.to_owned(),
                            target: shown_target(),
                        });
                    }
                    let dir: PathBuf = resolved.iter().collect();
                    match fs::symlink_metadata(self.root.join(&dir)) {
                        Ok(meta) if meta.is_dir() => {}
                        _ => {
                            return Err(ArchiveError::SymlinkUnresolvable {
                                path: shown.to_owned(),
                                target: shown_target(),
                                reason: format!(
                                    "it climbs out of {}, which is not a directory of the repository",
                                    dir.display()
                                ),
                            });
                        }
                    }
                    resolved.pop();
                }
                name => {
                    named = true;
                    resolved.push(OsString::from_vec(name.to_vec()));
                }
            }
        }
        if plain {
            return Ok(PathBuf::from(target));
        }
        let common = link_dir
            .iter()
            .zip(&resolved)
            .take_while(|(a, b)| a == b)
            .count();
        let mut rewritten = PathBuf::new();
        for _ in common..link_dir.len() {
            rewritten.push("..");
        }
        for name in &resolved[common..] {
            rewritten.push(name);
        }
        if rewritten.as_os_str().is_empty() {
            rewritten.push(".");
        }
        Ok(rewritten)
    }

    /// Writes the entries of the first `depth` directories of `self.path` not written yet.
    fn write_parents(&mut self, depth: usize) -> Result<(), ArchiveError> {
        for i in 0..depth {
            if self.dir_written[i] {
                continue;
            }
            self.count_entry()?;
            let mut name = self.path[..=i]
                .iter()
                .collect::<PathBuf>()
                .into_os_string()
                .into_vec();
            name.push(b'/');
            let mut header = new_header(EntryType::Directory, DIR_MODE);
            header.set_size(0);
            let result =
                self.builder
                    .append_data(&mut header, OsStr::from_bytes(&name), io::empty());
            self.written(result)?;
            self.dir_written[i] = true;
        }
        Ok(())
    }

    fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    fn written(&self, result: io::Result<()>) -> Result<(), ArchiveError> {
        result.map_err(|e| {
            if self.over_limit.get() {
                ArchiveError::TooLarge {
                    limit: self.limits.max_archive_bytes,
                }
            } else {
                ArchiveError::io(format!("cannot archive {}", self.shown()), e)
            }
        })
    }

    fn is_excluded(&self, is_dir: bool) -> bool {
        let components: Vec<String> = self
            .path
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        let components: Vec<&str> = components.iter().map(String::as_str).collect();
        self.filter.is_excluded(&components, is_dir)
    }

    fn rel_path(&self) -> PathBuf {
        self.path.iter().collect()
    }

    /// The current path for messages, `/`-separated.
    fn shown(&self) -> String {
        self.rel_path().to_string_lossy().into_owned()
    }
}

/// A header with every field that could vary between machines zeroed.
fn new_header(kind: EntryType, mode: u32) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::storage::ignore::read_patterns;

    /// An entry as read back: (path, kind, mode, uid, gid, mtime, content or link target).
    type Listed = (String, char, u32, u64, u64, u64, Vec<u8>);

    fn list(archive: &Archive) -> Vec<Listed> {
        let file = File::open(archive.path()).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        tar.entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let header = entry.header().clone();
                let kind = match header.entry_type() {
                    EntryType::Directory => 'd',
                    EntryType::Symlink => 'l',
                    EntryType::Regular => 'f',
                    other => panic!("unexpected entry type {other:?}"),
                };
                let mut data = Vec::new();
                if kind == 'l' {
                    data = entry.link_name_bytes().unwrap().into_owned();
                } else {
                    entry.read_to_end(&mut data).unwrap();
                }
                (
                    String::from_utf8(entry.path_bytes().into_owned()).unwrap(),
                    kind,
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                    header.mtime().unwrap(),
                    data,
                )
            })
            .collect()
    }

    fn names(archive: &Archive) -> Vec<String> {
        list(archive).into_iter().map(|e| e.0).collect()
    }

    fn archive(src: &Path, filter: &Filter) -> Result<Archive, ArchiveError> {
        let staging = src.parent().unwrap();
        archive_dir(src, filter, &ArchiveLimits::default(), staging)
    }

    fn write(root: &Path, rel: &str, content: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    #[test]
    fn entries_are_sorted_normalised_and_zeroed() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        write(&src, "b.yaml", "b");
        write(&src, "a/z.yaml", "z");
        write(&src, "a-c.yaml", "ac");
        write(&src, "run.sh", "#!/bin/sh\n");
        fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(src.join("b.yaml"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::create_dir(src.join("empty")).unwrap();
        fs::set_permissions(src.join("empty"), fs::Permissions::from_mode(0o700)).unwrap();

        let archive = archive(&src, &Filter::keep_all()).unwrap();
        let entries = list(&archive);
        let summary: Vec<(&str, char, u32)> =
            entries.iter().map(|e| (e.0.as_str(), e.1, e.2)).collect();
        assert_eq!(
            summary,
            [
                ("a/", 'd', 0o755),
                ("a/z.yaml", 'f', 0o644),
                ("a-c.yaml", 'f', 0o644),
                ("b.yaml", 'f', 0o644),
                ("empty/", 'd', 0o755),
                ("run.sh", 'f', 0o755),
            ]
        );
        for entry in &entries {
            assert_eq!((entry.3, entry.4, entry.5), (0, 0, 0), "{}", entry.0);
        }
        assert_eq!(entries[3].6, b"b");
        assert_eq!(archive.entries(), Some(6));
        assert_eq!(archive.size(), fs::metadata(archive.path()).unwrap().len());
        let bytes = fs::read(archive.path()).unwrap();
        assert_eq!(
            archive.digest(),
            format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
        );
        // gzip header: no flags, mtime 0, OS unknown.
        assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
        assert_eq!(bytes[9], 255);
    }

    #[test]
    fn same_content_gives_the_same_digest() {
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("one");
        let two = dir.path().join("two");
        // Created in different orders, with different modes and times.
        write(&one, "apps/app.yaml", "kind: Deployment\n");
        write(&one, "README.md", "hello\n");
        write(&one, "bin/tool", "#!/bin/sh\n");
        fs::set_permissions(one.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        write(&two, "bin/tool", "#!/bin/sh\n");
        fs::set_permissions(two.join("bin/tool"), fs::Permissions::from_mode(0o711)).unwrap();
        write(&two, "README.md", "hello\n");
        write(&two, "apps/app.yaml", "kind: Deployment\n");
        fs::set_permissions(two.join("README.md"), fs::Permissions::from_mode(0o664)).unwrap();
        fs::set_permissions(two.join("apps"), fs::Permissions::from_mode(0o700)).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        File::options()
            .write(true)
            .open(two.join("README.md"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        // Other owners, where the test may change them (as root).
        for path in ["README.md", "apps", "apps/app.yaml"] {
            if std::os::unix::fs::chown(two.join(path), Some(1234), Some(5678)).is_ok() {
                assert_eq!(fs::metadata(two.join(path)).unwrap().uid(), 1234);
            }
        }
        // Excluded content does not count either.
        write(&two, ".git/HEAD", "ref: refs/heads/main\n");
        write(&two, "logo.png", "png");

        let filter = Filter::with_flux_defaults(Vec::new());
        let a = archive(&one, &filter).unwrap();
        let b = archive(&two, &filter).unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_eq!(fs::read(a.path()).unwrap(), fs::read(b.path()).unwrap());

        // One byte changed: another digest.
        write(&two, "README.md", "hellO\n");
        let c = archive(&two, &filter).unwrap();
        assert_ne!(a.digest(), c.digest());
        // A mode that changes executability changes the digest too.
        fs::set_permissions(one.join("bin/tool"), fs::Permissions::from_mode(0o644)).unwrap();
        let d = archive(&one, &filter).unwrap();
        assert_ne!(a.digest(), d.digest());
    }

    #[test]
    fn filter_excludes_files_and_dirs_and_git_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        write(&src, ".git/config", "x");
        write(&src, ".github/workflows/ci.yaml", "x");
        write(&src, "deploy/app.yaml", "x");
        write(&src, "deploy/logo.png", "x");
        write(&src, "docs/readme.md", "x");
        let filter = Filter::with_flux_defaults(read_patterns("/docs/\n", &[]));
        // User patterns replace the defaults: .github and *.png are kept.
        assert_eq!(
            names(&archive(&src, &filter).unwrap()),
            [
                ".github/",
                ".github/workflows/",
                ".github/workflows/ci.yaml",
                "deploy/",
                "deploy/app.yaml",
                "deploy/logo.png",
            ]
        );
        // Even a filter that keeps everything never archives .git.
        assert!(
            !names(&archive(&src, &Filter::keep_all()).unwrap())
                .iter()
                .any(|n| n.starts_with(".git/"))
        );
    }

    #[test]
    fn negations_bring_back_content_of_excluded_dirs_with_parents() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        write(&src, "README.md", "x");
        write(&src, "src/main.rs", "x");
        write(&src, "deploy/base/app.yaml", "x");
        write(&src, "deploy/notes.txt", "x");
        let filter = Filter::new(read_patterns("/*\n!/deploy/\n*.txt\n", &[]));
        assert_eq!(
            names(&archive(&src, &filter).unwrap()),
            ["deploy/", "deploy/base/", "deploy/base/app.yaml"]
        );
        // `secret/` excluded, but one file inside brought back: its parent gets an entry.
        let filter = Filter::new(read_patterns("src/\n!src/main.rs\n", &[]));
        assert_eq!(
            names(&archive(&src, &filter).unwrap()),
            [
                "README.md",
                "deploy/",
                "deploy/base/",
                "deploy/base/app.yaml",
                "deploy/notes.txt",
                "src/",
                "src/main.rs",
            ]
        );
    }

    #[test]
    fn symlinks_inside_are_kept_outside_refused() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        write(&src, "base/app.yaml", "x");
        write(&src, "overlays/prod/kustomization.yaml", "x");
        symlink("base/app.yaml", src.join("link.yaml")).unwrap();
        symlink("../../base", src.join("overlays/prod/base")).unwrap();
        symlink("missing.yaml", src.join("dangling.yaml")).unwrap();
        // `..` after a name through real directories: rewritten.
        symlink("prod/../../base/app.yaml", src.join("overlays/app.yaml")).unwrap();
        let archive = archive(&src, &Filter::keep_all()).unwrap();
        let links: Vec<(String, String)> = list(&archive)
            .into_iter()
            .filter(|e| e.1 == 'l')
            .map(|e| (e.0, String::from_utf8(e.6).unwrap()))
            .collect();
        drop(archive);
        assert_eq!(
            links,
            [
                ("dangling.yaml".to_owned(), "missing.yaml".to_owned()),
                ("link.yaml".to_owned(), "base/app.yaml".to_owned()),
                (
                    "overlays/app.yaml".to_owned(),
                    "../base/app.yaml".to_owned()
                ),
                ("overlays/prod/base".to_owned(), "../../base".to_owned()),
            ]
        );

        for (name, target) in [("abs", "/etc/passwd"), ("up", "../../outside")] {
            let src = dir.path().join(name);
            write(&src, "deploy/app.yaml", "x");
            symlink(target, src.join("deploy/evil")).unwrap();
            let err = archive_dir(
                &src,
                &Filter::keep_all(),
                &ArchiveLimits::default(),
                dir.path(),
            )
            .unwrap_err();
            assert!(
                matches!(&err, ArchiveError::SymlinkOutside { path, .. } if path == "deploy/evil"),
                "{err:?}"
            );
            assert!(
                err.to_string()
                    .starts_with("symlink deploy/evil points outside the repository"),
                "{err}"
            );
            // Excluded symlinks are not checked.
            let filter = Filter::new(read_patterns("evil", &[]));
            archive_dir(&src, &filter, &ArchiveLimits::default(), dir.path()).unwrap();
        }

        // Climbing out of a symlinked directory cannot be judged lexically.
        let src = dir.path().join("through-link");
        write(&src, "real/a.yaml", "x");
        symlink("real", src.join("alias")).unwrap();
        symlink("alias/../real/a.yaml", src.join("tricky")).unwrap();
        let err = archive_dir(
            &src,
            &Filter::keep_all(),
            &ArchiveLimits::default(),
            dir.path(),
        )
        .unwrap_err();
        assert!(
            matches!(err, ArchiveError::SymlinkUnresolvable { .. }),
            "{err:?}"
        );
        // Nothing left behind in the staging directory after failures.
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(STAGING_PREFIX)
            })
            .collect();
        assert_eq!(leftovers.len(), 0);
    }

    #[test]
    fn archives_are_readable_by_the_sdk_rules_for_long_names() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let long_dir = "d".repeat(120);
        let long_file = format!("{long_dir}/{}.yaml", "f".repeat(130));
        write(&src, &long_file, "long");
        symlink(&long_file, src.join("l")).unwrap();
        let archive = archive(&src, &Filter::keep_all()).unwrap();
        let entries = list(&archive);
        assert_eq!(entries[0].0, format!("{long_dir}/"));
        assert_eq!(entries[1].0, long_file);
        assert_eq!(entries[1].6, b"long");
        assert_eq!(entries[2].6, long_file.as_bytes());
    }

    #[test]
    fn limits_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        for i in 0..5 {
            write(&src, &format!("f{i}"), &"x".repeat(1000));
        }
        let run = |limits: ArchiveLimits| {
            archive_dir(&src, &Filter::keep_all(), &limits, dir.path()).unwrap_err()
        };
        let err = run(ArchiveLimits {
            max_archive_bytes: 100,
            ..ArchiveLimits::default()
        });
        assert!(
            matches!(err, ArchiveError::TooLarge { limit: 100 }),
            "{err:?}"
        );
        let err = run(ArchiveLimits {
            max_content_bytes: 4999,
            ..ArchiveLimits::default()
        });
        assert!(
            matches!(err, ArchiveError::ContentTooLarge { limit: 4999 }),
            "{err:?}"
        );
        let err = run(ArchiveLimits {
            max_entries: 4,
            ..ArchiveLimits::default()
        });
        assert!(
            matches!(err, ArchiveError::TooManyEntries { limit: 4 }),
            "{err:?}"
        );
        // Exactly at the limits is fine.
        let ok = archive_dir(
            &src,
            &Filter::keep_all(),
            &ArchiveLimits {
                max_content_bytes: 5000,
                max_entries: 5,
                ..ArchiveLimits::default()
            },
            dir.path(),
        )
        .unwrap();
        let exact = archive_dir(
            &src,
            &Filter::keep_all(),
            &ArchiveLimits {
                max_archive_bytes: ok.size(),
                ..ArchiveLimits::default()
            },
            dir.path(),
        )
        .unwrap();
        assert_eq!(exact.digest(), ok.digest());
    }

    #[test]
    fn refuses_a_source_that_is_not_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        let err = archive(&file, &Filter::keep_all()).unwrap_err();
        assert!(matches!(err, ArchiveError::NotADirectory { .. }), "{err:?}");
        let err = archive(&dir.path().join("missing"), &Filter::keep_all()).unwrap_err();
        assert!(matches!(err, ArchiveError::Io { .. }), "{err:?}");
    }

    #[test]
    fn from_reader_stages_bytes_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let staged = Archive::from_reader(&b"layer bytes"[..], dir.path(), 100).unwrap();
        assert_eq!(fs::read(staged.path()).unwrap(), b"layer bytes");
        assert_eq!(staged.size(), 11);
        assert_eq!(staged.entries(), None);
        assert_eq!(
            staged.digest(),
            format!("sha256:{}", hex::encode(Sha256::digest(b"layer bytes")))
        );
        let err = Archive::from_reader(&b"layer bytes"[..], dir.path(), 10).unwrap_err();
        assert!(matches!(err, ArchiveError::TooLarge { limit: 10 }));
        let path = staged.path().to_path_buf();
        drop(staged);
        assert!(!path.exists());
    }
}
