//! Guards of the local-folder store: no symbolic link on a key's path is followed (a
//! link could lead out of the store's root), and the staging files that a killed write
//! leaves (`{key}#{n}`) are removed when the store opens.

use std::path::{Path, PathBuf};

use crate::{Key, StorageError};

/// Refuses `key` when any folder or file on its path under `root` is a symbolic link.
pub(crate) fn refuse_symlinks(root: &Path, key: &Key) -> Result<(), StorageError> {
    let mut path = root.to_path_buf();
    for segment in key.as_str().split('/') {
        path.push(segment);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(StorageError::Symlink {
                    key: key.to_string(),
                });
            }
            Ok(_) => {}
            // Nothing further down exists yet: nothing to follow.
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Whether a file name is a staging file of an unfinished write: `{name}#{digits}`.
fn is_staging(name: &str) -> bool {
    name.rsplit_once('#').is_some_and(|(base, n)| {
        !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Removes every staging file under `root` (without following links); returns how many.
///
/// A local store folder belongs to one process: a write in flight in another process
/// sharing the folder would lose its staging file.
pub(crate) fn remove_staging_files(root: &Path) -> usize {
    let mut removed = 0;
    let mut folders: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                folders.push(entry.path());
            } else if kind.is_file()
                && entry.file_name().to_str().is_some_and(is_staging)
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_are_recognised() {
        assert!(is_staging("case.nii.gz#3"));
        assert!(is_staging("job.json#12"));
        assert!(!is_staging("case.nii.gz"));
        assert!(!is_staging("a#b"));
        assert!(!is_staging("#3"));
        assert!(!is_staging("a#"));
    }

    #[test]
    fn stale_staging_files_go_and_objects_stay() {
        let root = tempfile::tempdir().unwrap();
        let folder = root.path().join("jobs/j1");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("job.json"), b"{}").unwrap();
        std::fs::write(folder.join("job.json#7"), b"{").unwrap();
        std::fs::write(root.path().join("x#1"), b"").unwrap();
        assert_eq!(remove_staging_files(root.path()), 2);
        assert!(folder.join("job.json").exists());
        assert!(!folder.join("job.json#7").exists());
    }

    #[cfg(unix)]
    #[test]
    fn links_on_the_path_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("raw")).unwrap();
        let key = Key::parse("raw/secret").unwrap();
        assert!(matches!(
            refuse_symlinks(root.path(), &key),
            Err(StorageError::Symlink { .. })
        ));
        let fine = Key::parse("volumes/new.nii.gz").unwrap();
        assert!(refuse_symlinks(root.path(), &fine).is_ok());
    }
}
