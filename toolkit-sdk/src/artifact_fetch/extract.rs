//! Safe unpacking of a gzip-compressed tar archive into a fresh directory.
//!
//! The archive comes from another controller over plain HTTP, so every entry is treated as
//! hostile until checked. The rules, in the order they are applied to each entry:
//!
//! - at most [`FetchLimits::max_entries`] entries of any kind;
//! - the declared sizes, and the bytes actually written, add up to at most
//!   [`FetchLimits::max_extracted_bytes`]; tar metadata (long names, PAX records) between two
//!   entries is bounded too, so a tiny archive can neither fill the disk nor the memory;
//! - paths are relative and have no `..` component (`.` and empty components are dropped);
//! - every directory on the way to an entry must be a real directory created by this
//!   extraction: a symlink is never followed while writing, even one that points inside;
//! - symlink targets are relative, use `..` only as leading components and never climb above
//!   the root; with the previous rule this keeps every symlink in the tree, however chained,
//!   resolving inside the root;
//! - hard links must name a regular file extracted earlier, reached without any symlink;
//! - character and block devices and FIFOs are skipped (never created): artifacts carry
//!   configuration, a device node is never useful to a consumer and creating one needs
//!   privileges, so refusing the whole artifact for it would only hurt;
//! - a later entry replaces an earlier file or symlink of the same path (tar semantics), but
//!   never a directory, and a directory never replaces a file or symlink;
//! - modes are normalised: directories `0755`, files `0755` when any executable bit is set
//!   in the archive and `0644` otherwise; owners and times are not restored.

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tar::EntryType;

use super::FetchLimits;
use super::error::FetchError;

/// Bytes of tar metadata (headers, GNU long names, PAX records, padding) allowed between the
/// data of one entry and the next. The tar reader keeps long names and PAX records in
/// memory, so this is what bounds its memory use. Real archives need a few KiB at most.
const METADATA_BUDGET: u64 = 64 * 1024;

/// Size of the copy buffer for file contents.
const COPY_BUFFER: usize = 64 * 1024;

/// What an extraction produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extracted {
    /// Entries read from the archive, of every kind (skipped ones included).
    pub(crate) entries: u64,
    /// Declared content bytes of all entries (what regular files occupy once written).
    pub(crate) bytes: u64,
}

/// Unpacks the gzip-compressed tar at `archive` into `root`, an existing empty directory.
///
/// On error, `root` holds whatever was written so far; the caller discards it.
pub(crate) fn unpack(
    archive: &Path,
    root: &Path,
    limits: &FetchLimits,
) -> Result<Extracted, FetchError> {
    let file = File::open(archive)
        .map_err(|e| FetchError::io(format!("cannot open {}", archive.display()), e))?;
    let budget = Rc::new(StreamBudget::default());
    budget.allow(METADATA_BUDGET);
    let stream = BudgetedReader {
        inner: flate2::read::MultiGzDecoder::new(BufReader::new(file)),
        budget: Rc::clone(&budget),
    };
    let mut tar = tar::Archive::new(stream);
    let mut unpacker = Unpacker {
        root,
        limits,
        extracted: Extracted {
            entries: 0,
            bytes: 0,
        },
        buffer: vec![0; COPY_BUFFER],
    };
    let entries = tar.entries().map_err(archive_error)?;
    for entry in entries {
        let mut entry = entry.map_err(archive_error)?;
        unpacker.extracted.entries += 1;
        if unpacker.extracted.entries > limits.max_entries {
            return Err(FetchError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        // What the tar reader may consume before it hands out the next entry: the rest of
        // this entry's data, its padding, and the next entry's metadata.
        let stored = entry.size().max(entry.header().entry_size().unwrap_or(0));
        budget.allow(stored.saturating_add(512).saturating_add(METADATA_BUDGET));
        unpacker.entry(&mut entry)?;
    }
    Ok(unpacker.extracted)
}

/// Maps an error from the gzip/tar readers (including an exceeded metadata budget).
fn archive_error(err: io::Error) -> FetchError {
    FetchError::CorruptArchive { source: err }
}

/// The tar stream had more metadata between two entries than [`METADATA_BUDGET`].
#[derive(Debug, thiserror::Error)]
#[error("more than {METADATA_BUDGET} bytes of tar metadata before an entry")]
struct MetadataTooLarge;

/// How many more decompressed bytes the tar reader may pull before the next entry.
#[derive(Debug, Default)]
struct StreamBudget {
    remaining: Cell<u64>,
}

impl StreamBudget {
    fn allow(&self, bytes: u64) {
        self.remaining.set(bytes);
    }
}

/// The decompressed stream, failing once the tar reader exceeds its [`StreamBudget`].
struct BudgetedReader<R> {
    inner: R,
    budget: Rc<StreamBudget>,
}

impl<R: Read> Read for BudgetedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let remaining = self.budget.remaining.get();
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        if n64 > remaining {
            return Err(io::Error::other(MetadataTooLarge));
        }
        self.budget.remaining.set(remaining - n64);
        Ok(n)
    }
}

struct Unpacker<'a> {
    root: &'a Path,
    limits: &'a FetchLimits,
    extracted: Extracted,
    buffer: Vec<u8>,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), FetchError> {
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let rel =
            sanitize_entry_path(&raw_path).map_err(|why| FetchError::unsafe_entry(&shown, why))?;
        let kind = entry.header().entry_type();

        // Charge declared sizes of every kind, so even skipped entries (whose data the reader
        // still has to decompress to step over) count against the limit.
        let declared = entry.size();
        if declared
            > self
                .limits
                .max_extracted_bytes
                .saturating_sub(self.extracted.bytes)
        {
            return Err(FetchError::ExtractedTooLarge {
                limit: self.limits.max_extracted_bytes,
            });
        }
        self.extracted.bytes += declared;

        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let rel = non_empty(rel, &shown)?;
                let executable = entry.header().mode().map_err(archive_error)? & 0o111 != 0;
                self.prepare(&rel, &shown, false)?;
                self.write_file(entry, &rel, executable, declared)
            }
            EntryType::Directory => {
                if rel.as_os_str().is_empty() {
                    return Ok(()); // The root itself (`./`).
                }
                self.prepare(&rel, &shown, true)?;
                let full = self.root.join(&rel);
                match fs::symlink_metadata(&full) {
                    Ok(_) => Ok(()), // `prepare` checked it is a real directory.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => create_dir(&full),
                    Err(e) => Err(FetchError::io(
                        format!("cannot inspect {}", full.display()),
                        e,
                    )),
                }
            }
            EntryType::Symlink => {
                let rel = non_empty(rel, &shown)?;
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                check_symlink_target(&rel, &target)
                    .map_err(|why| FetchError::unsafe_entry(&shown, why))?;
                self.prepare(&rel, &shown, false)?;
                let full = self.root.join(&rel);
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &full).map_err(|e| {
                    FetchError::io(format!("cannot create symlink {}", full.display()), e)
                })
            }
            EntryType::Link => {
                let rel = non_empty(rel, &shown)?;
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let source = self
                    .hard_link_source(&target)
                    .map_err(|why| FetchError::unsafe_entry(&shown, why))?;
                self.prepare(&rel, &shown, false)?;
                let full = self.root.join(&rel);
                fs::hard_link(&source, &full).map_err(|e| {
                    FetchError::io(format!("cannot create hard link {}", full.display()), e)
                })
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                tracing::debug!(entry = %shown, kind = ?kind, "skipping device or FIFO entry in artifact");
                Ok(())
            }
            // PAX global headers carry metadata only; any other kind is not a file we know how
            // to make, and is left out rather than guessed at.
            _ => {
                tracing::debug!(entry = %shown, kind = ?kind, "skipping tar entry of unsupported kind");
                Ok(())
            }
        }
    }

    /// Makes sure the parents of `rel` are real directories (creating missing ones), and
    /// clears the way for the entry itself.
    fn prepare(&self, rel: &Path, shown: &str, is_dir: bool) -> Result<(), FetchError> {
        let mut current = self.root.to_path_buf();
        let mut components = rel.components().peekable();
        while let Some(component) = components.next() {
            current.push(component);
            let last = components.peek().is_none();
            let meta = match fs::symlink_metadata(&current) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !last {
                        create_dir(&current)?;
                    }
                    continue;
                }
                Err(e) => {
                    return Err(FetchError::io(
                        format!("cannot inspect {}", current.display()),
                        e,
                    ));
                }
            };
            let shown_here = || relative_display(self.root, &current);
            let file_type = meta.file_type();
            if !last {
                if file_type.is_symlink() {
                    return Err(FetchError::unsafe_entry(
                        shown,
                        format!("it would be written through the symlink `{}`", shown_here()),
                    ));
                }
                if !file_type.is_dir() {
                    return Err(FetchError::unsafe_entry(
                        shown,
                        format!("its parent `{}` is not a directory", shown_here()),
                    ));
                }
                continue;
            }
            match (file_type.is_dir(), is_dir) {
                (true, true) => {}
                (true, false) => {
                    return Err(FetchError::unsafe_entry(
                        shown,
                        "it would replace a directory of the same name",
                    ));
                }
                (false, true) => {
                    return Err(FetchError::unsafe_entry(
                        shown,
                        "a directory would replace a file or symlink of the same name",
                    ));
                }
                (false, false) => fs::remove_file(&current).map_err(|e| {
                    FetchError::io(format!("cannot replace {}", current.display()), e)
                })?,
            }
        }
        Ok(())
    }

    fn write_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        rel: &Path,
        executable: bool,
        declared: u64,
    ) -> Result<(), FetchError> {
        let full = self.root.join(rel);
        let write_error = |e| FetchError::io(format!("cannot write {}", full.display()), e);
        // `create_new` never opens an existing path, so never a symlink planted earlier.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&full)
            .map_err(write_error)?;
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(archive_error(e)),
            };
            written = written.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
            if written > declared {
                // The tar reader stops at the declared size; this guards the accounting anyway.
                return Err(FetchError::ExtractedTooLarge {
                    limit: self.limits.max_extracted_bytes,
                });
            }
            file.write_all(&self.buffer[..n]).map_err(write_error)?;
        }
        let mode = if executable { 0o755 } else { 0o644 };
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(write_error)
    }

    /// The path of the earlier regular file a hard link entry names, or why it is refused.
    fn hard_link_source(&self, target: &[u8]) -> Result<PathBuf, String> {
        let rel =
            sanitize_entry_path(target).map_err(|why| format!("its hard link target {why}"))?;
        if rel.as_os_str().is_empty() {
            return Err("its hard link target is empty".into());
        }
        let mut current = self.root.to_path_buf();
        for component in rel.components() {
            current.push(component);
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err("its hard link target goes through a symlink".into());
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(
                        "its hard link target is not a file extracted earlier from this archive"
                            .into(),
                    );
                }
            }
        }
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_file() => Ok(current),
            _ => Err("its hard link target is not a regular file".into()),
        }
    }
}

fn create_dir(path: &Path) -> Result<(), FetchError> {
    fs::create_dir(path)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(0o755)))
        .map_err(|e| FetchError::io(format!("cannot create directory {}", path.display()), e))
}

fn non_empty(rel: PathBuf, shown: &str) -> Result<PathBuf, FetchError> {
    if rel.as_os_str().is_empty() {
        return Err(FetchError::unsafe_entry(shown, "its path is empty"));
    }
    Ok(rel)
}

fn relative_display(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Turns a raw tar path into a relative path with only normal components.
///
/// Empty and `.` components are dropped (so `./a//b/` is `a/b`, and `./` is the empty path,
/// meaning the root). Absolute paths and `..` components are refused, with the reason.
pub(crate) fn sanitize_entry_path(raw: &[u8]) -> Result<PathBuf, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("is an absolute path");
    }
    let mut path = PathBuf::new();
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err("contains a `..` component"),
            name => path.push(OsStr::from_bytes(name)),
        }
    }
    Ok(path)
}

/// Checks that the symlink at `link` (a sanitized path relative to the root) pointing to
/// `target` resolves inside the root, or says why not.
///
/// The target must be relative, and `..` may appear only before every named component; it
/// may climb at most to the root. Since no entry is ever written through a symlink, the
/// link's parent is a real directory at the depth its path says, so this check alone is
/// enough, even when the target names further symlinks.
pub(crate) fn check_symlink_target(link: &Path, target: &[u8]) -> Result<(), String> {
    if target.is_empty() {
        return Err("its symlink target is empty".into());
    }
    let shown = String::from_utf8_lossy(target);
    if target.first() == Some(&b'/') {
        return Err(format!(
            "it is a symlink to the absolute path `{shown}`, outside the artifact"
        ));
    }
    let depth = link.components().count().saturating_sub(1);
    let mut ups = 0usize;
    let mut named = false;
    for component in target.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." if named => {
                return Err(format!(
                    "its symlink target `{shown}` uses `..` after a directory name"
                ));
            }
            b".." => ups += 1,
            _ => named = true,
        }
    }
    if ups > depth {
        return Err(format!(
            "its symlink target `{shown}` points outside the artifact"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_normalised_or_refused() {
        let ok: &[(&[u8], &str)] = &[
            (b"a/b/c.yaml", "a/b/c.yaml"),
            (b"./a/./b/", "a/b"),
            (b"a//b", "a/b"),
            (b"./", ""),
            (b".", ""),
            (b"..a/b..", "..a/b.."),
            (b"a\\..\\b", "a\\..\\b"), // A backslash is an ordinary byte on Unix.
        ];
        for (raw, want) in ok {
            assert_eq!(
                sanitize_entry_path(raw).unwrap(),
                Path::new(want),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let refused: &[&[u8]] = &[
            b"/etc/passwd",
            b"//etc/passwd",
            b"../x",
            b"a/../../x",
            b"a/..",
            b"./..",
            b"..",
        ];
        for raw in refused {
            assert!(
                sanitize_entry_path(raw).is_err(),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn symlink_targets_must_stay_inside() {
        let ok: &[(&str, &str)] = &[
            ("link", "file"),
            ("link", "./dir/file"),
            ("link", "."),
            ("a/link", ".."),
            ("a/link", "../b/file"),
            ("a/b/link", "../../c"),
            ("a/b/link", "../.././c/./d"),
        ];
        for (link, target) in ok {
            assert!(
                check_symlink_target(Path::new(link), target.as_bytes()).is_ok(),
                "{link} -> {target}"
            );
        }
        let refused: &[(&str, &str)] = &[
            ("link", "/etc"),
            ("a/link", "/a/file"),
            ("link", ".."),
            ("link", "../../x"),
            ("a/link", "../../x"),
            ("a/b/link", "../../../x"),
            // `..` after a name could climb out through a symlink named by that name.
            ("link", "dir/../file"),
            ("a/link", "x/../../y"),
            ("link", ""),
        ];
        for (link, target) in refused {
            assert!(
                check_symlink_target(Path::new(link), target.as_bytes()).is_err(),
                "{link} -> {target}"
            );
        }
    }
}
