//! Validation of `[cache.disk]`: the directory must be one Meridian can write, the bound must
//! fit the filesystem, and the disk must take every object the memory tier takes.

use super::*;
use crate::config::file::CacheDiskFile;
use crate::config::runtime::DiskSettings;
use nix::unistd::{access, AccessFlags};

/// Segment files of the disk tier end in this (what the tier already holds counts as free).
const SEGMENT_SUFFIX: &str = ".seg";

impl Builder<'_> {
    pub(super) fn cache_disk(
        &mut self,
        d: &CacheDiskFile,
        memory_max_object: u64,
    ) -> Option<DiskSettings> {
        let path = self.relative_to_config(d.path.get_ref().trim());
        let size = self.size(&Some(d.size.clone()), "cache.disk.size", 0);
        let max_object = self.size(&d.max_object, "cache.disk.max_object", (size / 16).max(1));
        let mut ok = size > 0;
        if !path.is_dir() {
            self.push_hint(
                d.path.span(),
                "cache.disk.path",
                format!("{} is not a directory", path.display()),
                "create it for the user Meridian runs as (mkdir -p, chown)",
            );
            return None;
        }
        if let Err(e) = access(&path, AccessFlags::W_OK | AccessFlags::X_OK) {
            self.push_hint(
                d.path.span(),
                "cache.disk.path",
                format!("{} is not writable: {e}", path.display()),
                "give the user Meridian runs as write access to it",
            );
            ok = false;
        }
        match room(&path) {
            Ok(room) if size > room => {
                self.push_hint(
                    d.size.span(),
                    "cache.disk.size",
                    format!(
                        "{size} bytes is more than the filesystem has room for ({room} bytes free, \
                         counting what the disk tier already holds there)"
                    ),
                    "lower size, or free space on that filesystem",
                );
                ok = false;
            }
            Ok(_) => {}
            Err(e) => {
                self.push(
                    d.path.span(),
                    "cache.disk.path",
                    format!("cannot read the free space of {}: {e}", path.display()),
                );
                ok = false;
            }
        }
        if max_object < memory_max_object {
            let span = d.max_object.as_ref().map_or(d.size.span(), |m| m.span());
            self.push_hint(
                span,
                "cache.disk.max_object",
                format!(
                    "{max_object} bytes is less than cache.max_object ({memory_max_object} bytes)"
                ),
                "the disk tier must take every object the memory tier takes: raise it",
            );
            ok = false;
        }
        if max_object > size {
            if let Some(m) = &d.max_object {
                self.push(
                    m.span(),
                    "cache.disk.max_object",
                    format!("{max_object} bytes is more than cache.disk.size ({size} bytes)"),
                );
                ok = false;
            }
        }
        ok.then_some(DiskSettings {
            path,
            size,
            max_object,
        })
    }
}

/// Bytes the disk tier may use at `dir`: the filesystem's free space plus what its segment
/// files there already hold.
fn room(dir: &std::path::Path) -> std::io::Result<u64> {
    let fs = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    let free = fs.blocks_available().saturating_mul(fs.fragment_size());
    let mut held = 0u64;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .ends_with(SEGMENT_SUFFIX)
        {
            held += entry.metadata()?.len();
        }
    }
    Ok(free.saturating_add(held))
}
