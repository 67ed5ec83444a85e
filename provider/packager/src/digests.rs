//! Content digests of source files, remembered between plans. A file whose size, inode and
//! modification and change times are what they were when it was read is not read again, so a
//! no-op plan costs a stat per file rather than a read.
//!
//! A digest is only remembered once the file's times are a few seconds older than the read
//! (as git does for its index): a file rewritten within the clock's granularity, with the same
//! size, could otherwise keep a stale digest.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// The first line of a digest file; another one is ignored.
const HEADER: &str = "adf-digests/1";

/// How much older than the read a file's times must be for its digest to be remembered.
const SETTLED: Duration = Duration::from_secs(2);

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    size: u64,
    ino: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    pub(crate) fn of(m: &Metadata) -> Self {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Self {
            size: m.size(),
            ino: m.ino(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        }
    }
}

/// The digests of one package's files, loaded from and saved to `<cache>/digests/<key>`.
#[derive(Debug)]
pub(crate) struct Digests {
    file: PathBuf,
    /// Read on a thread of its own, while the tree is walked.
    table: Table,
    /// Whether the table gained or changed entries since it was loaded.
    changed: bool,
    /// Nanoseconds since the epoch before which a file's times count as settled.
    settled_before: i128,
    read: usize,
}

impl Digests {
    /// The digests remembered for the package at `source_dir` (empty when there are none).
    pub(crate) fn open(cache_dir: &Path, source_dir: &Path) -> Self {
        let key = crate::inputs::hex(&Sha256::digest(source_dir.as_os_str().as_encoded_bytes()));
        let file = cache_dir.join("digests").join(&key[..32]);
        let reading = file.clone();
        let table = Table::Loading(std::thread::spawn(move || {
            std::fs::read_to_string(&reading).map(|text| parse(&text)).unwrap_or_default()
        }));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let settled_before = (now.saturating_sub(SETTLED)).as_nanos() as i128;
        Self { file, table, changed: false, settled_before, read: 0 }
    }

    /// The SHA-256 of `path`'s content, read only when its stamp changed. `stamp` is the one
    /// taken while walking the tree, if any. `None` for a file that cannot be read.
    pub(crate) fn digest(&mut self, path: &Path, stamp: Option<Stamp>) -> Option<[u8; 32]> {
        let stamp = match stamp {
            Some(s) => s,
            None => Stamp::of(&std::fs::metadata(path).ok()?),
        };
        let key = path.as_os_str().as_encoded_bytes();
        let settled = self.settled_before;
        let entries = self.table.entries();
        if let Some(e) = entries.get_mut(key)
            && e.stamp == stamp
        {
            e.used = true;
            return Some(e.digest);
        }
        let digest = file_digest(path)?;
        self.read += 1;
        self.changed = true;
        if stamp.mtime_ns.max(stamp.ctime_ns) < settled && !key.contains(&b'\n') {
            entries.insert(key.into(), Entry { stamp, digest, used: true });
        } else {
            entries.remove(key);
        }
        Some(digest)
    }

    /// How many files were read (not answered from the remembered digests).
    pub(crate) fn files_read(&self) -> usize {
        self.read
    }

    /// Saves the digests this run used, when they differ from what was loaded: files gone from
    /// the tree are forgotten. Failing to save only costs the next plan a read, so errors are
    /// logged, not returned.
    pub(crate) fn save(&mut self) {
        let entries = self.table.entries();
        if !self.changed && entries.values().all(|e| e.used) {
            return;
        }
        let mut text = String::with_capacity(entries.len() * 120);
        text.push_str(HEADER);
        text.push('\n');
        for (path, e) in entries.iter().filter(|(_, e)| e.used) {
            let Ok(p) = std::str::from_utf8(path) else { continue };
            let s = e.stamp;
            let d = crate::inputs::hex(&e.digest);
            text.push_str(&format!("{d} {} {} {} {} {p}\n", s.size, s.ino, s.mtime_ns, s.ctime_ns));
        }
        let write = || -> std::io::Result<()> {
            let dir = self.file.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let tmp = self.file.with_extension(format!("{}.tmp", std::process::id()));
            std::fs::File::create(&tmp)?.write_all(text.as_bytes())?;
            std::fs::rename(&tmp, &self.file)
        };
        if let Err(e) = write() {
            tracing::warn!(file = %self.file.display(), error = %e, "could not save source digests");
        }
    }
}

/// One remembered digest.
#[derive(Debug)]
struct Entry {
    stamp: Stamp,
    digest: [u8; 32],
    /// Whether this run hashed the file: only those are saved.
    used: bool,
}

/// By path as bytes (hashing a `Path` walks its components, which is slow).
type Entries = HashMap<Box<[u8]>, Entry>;

/// The remembered digests, while and once they are read.
#[derive(Debug)]
enum Table {
    Loading(std::thread::JoinHandle<Entries>),
    Loaded(Entries),
}

impl Table {
    fn entries(&mut self) -> &mut Entries {
        if let Table::Loading(_) = self
            && let Table::Loading(handle) = std::mem::replace(self, Table::Loaded(Entries::new()))
        {
            *self = Table::Loaded(handle.join().unwrap_or_default());
        }
        match self {
            Table::Loaded(entries) => entries,
            Table::Loading(_) => unreachable!("loaded just above"),
        }
    }
}

/// The SHA-256 of a file's content, `None` when it cannot be read.
pub(crate) fn file_digest(path: &Path) -> Option<[u8; 32]> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut content = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => content.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(content.finalize().into())
}

/// Reads a digest file; lines that do not parse are skipped.
fn parse(text: &str) -> Entries {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return HashMap::new();
    }
    lines
        .filter_map(|line| {
            let mut f = line.splitn(6, ' ');
            let digest = unhex(f.next()?)?;
            let stamp = Stamp {
                size: f.next()?.parse().ok()?,
                ino: f.next()?.parse().ok()?,
                mtime_ns: f.next()?.parse().ok()?,
                ctime_ns: f.next()?.parse().ok()?,
            };
            Some((f.next()?.as_bytes().into(), Entry { stamp, digest, used: false }))
        })
        .collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Moves the settling line an hour ahead, as a plan an hour later would see it.
    fn age(d: &mut Digests) {
        d.settled_before += Duration::from_secs(3600).as_nanos() as i128;
    }

    #[test]
    fn a_settled_file_is_read_once_and_an_edit_is_seen() {
        let dir = tempfile::tempdir().expect("tmp");
        let (cache, src) = (dir.path().join("cache"), dir.path().join("src"));
        std::fs::create_dir_all(&src).expect("mkdir");
        let file = src.join("a.txt");
        std::fs::write(&file, "one").expect("write");

        let mut first = Digests::open(&cache, &src);
        age(&mut first);
        let d1 = first.digest(&file, None).expect("digest");
        assert_eq!(first.files_read(), 1);
        first.save();

        let mut second = Digests::open(&cache, &src);
        assert_eq!(second.digest(&file, None), Some(d1));
        assert_eq!(second.files_read(), 0, "a settled, unchanged file is not read again");

        // An edit of the same size that keeps the modification time (as `cp -p` does): only
        // the change time tells.
        let mtime = std::fs::metadata(&file).and_then(|m| m.modified()).expect("mtime");
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(&file, "two").expect("edit");
        std::fs::File::options().write(true).open(&file).and_then(|f| f.set_modified(mtime)).expect("set mtime");
        let mut third = Digests::open(&cache, &src);
        age(&mut third);
        let d3 = third.digest(&file, None).expect("digest");
        assert_ne!(d1, d3, "an edit is seen through the change time");
        assert_eq!(third.files_read(), 1);
    }

    #[test]
    fn a_fresh_file_is_not_remembered() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("a.txt");
        std::fs::write(&file, "one").expect("write");
        let mut first = Digests::open(dir.path(), dir.path());
        first.digest(&file, None).expect("digest");
        first.save();
        let mut second = Digests::open(dir.path(), dir.path());
        second.digest(&file, None).expect("digest");
        assert_eq!(second.files_read(), 1, "written just now: it could change again within the clock's tick");
    }

    #[test]
    fn a_damaged_digest_file_only_costs_reads() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("a.txt");
        std::fs::write(&file, "one").expect("write");
        let mut d = Digests::open(dir.path(), dir.path());
        age(&mut d);
        let good = d.digest(&file, None);
        d.save();
        std::fs::write(&d.file, format!("{HEADER}\nnot a line\n")).expect("damage");
        let mut again = Digests::open(dir.path(), dir.path());
        assert_eq!(again.digest(&file, None), good);
        assert_eq!(again.files_read(), 1);
        assert_eq!(file_digest(&dir.path().join("missing")), None);
    }
}
