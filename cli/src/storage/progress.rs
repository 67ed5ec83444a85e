//! An upload's progress on standard error: on a terminal one line rewritten in place, otherwise
//! a line each time another tenth is done (each `step` bytes when the size is unknown). Write
//! errors are ignored: progress is a courtesy, the upload is the result.

use std::io::Write;

/// The progress display.
pub struct Progress<W: Write> {
    tty: bool,
    out: W,
    total: Option<u64>,
    /// Bytes per line when `total` is unknown (and not on a terminal).
    step: u64,
    /// The last tenth (or step) a line was printed for.
    shown: u64,
    started: bool,
}

impl<W: Write> Progress<W> {
    /// A display of `total` bytes, if known, on `out`.
    pub fn new(tty: bool, out: W, total: Option<u64>, step: u64) -> Self {
        Self { tty, out, total, step: step.max(1), shown: 0, started: false }
    }

    /// Shows that `done` bytes are taken.
    pub fn show(&mut self, done: u64) {
        let text = line(done, self.total);
        let _ = if self.tty {
            write!(self.out, "\r\x1b[K{text}")
        } else {
            let mark = match self.total {
                Some(total) => done.saturating_mul(10) / total.max(1),
                None => done / self.step,
            };
            if mark <= self.shown {
                return;
            }
            self.shown = mark;
            writeln!(self.out, "{text}")
        };
        let _ = self.out.flush();
        self.started = true;
    }

    /// Ends the line on a terminal.
    pub fn finish(&mut self) {
        if self.tty && self.started {
            let _ = writeln!(self.out);
        }
    }
}

/// `8.0 MiB / 20.0 MiB (40%)`, or `8.0 MiB` when the total is unknown.
fn line(done: u64, total: Option<u64>) -> String {
    match total {
        Some(total) => format!("{} / {} ({}%)", size(done), size(total), done.saturating_mul(100) / total.max(1)),
        None => size(done),
    }
}

/// `512 B`, `1.5 KiB`, `20.0 MiB`, `1.2 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn shown(tty: bool, total: Option<u64>, steps: &[u64]) -> String {
        let mut p = Progress::new(tty, Vec::new(), total, 8 * MIB);
        for &s in steps {
            p.show(s);
        }
        p.finish();
        String::from_utf8_lossy(&p.out).into_owned()
    }

    #[test]
    fn sizes_are_in_binary_units() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(20 * MIB), "20.0 MiB");
        assert_eq!(size(1288490189), "1.2 GiB");
    }

    #[test]
    fn a_log_gets_a_line_per_tenth() {
        let steps: Vec<u64> = (1..=20).map(|i| i * MIB).collect();
        let text = shown(false, Some(20 * MIB), &steps);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10, "{text}");
        assert_eq!(lines[0], "2.0 MiB / 20.0 MiB (10%)");
        assert_eq!(lines[9], "20.0 MiB / 20.0 MiB (100%)");
        let text = shown(false, None, &steps);
        assert_eq!(text, "8.0 MiB\n16.0 MiB\n");
    }

    #[test]
    fn a_terminal_gets_one_line_rewritten() {
        let text = shown(true, Some(4 * MIB), &[MIB, 4 * MIB]);
        assert_eq!(text, "\r\x1b[K1.0 MiB / 4.0 MiB (25%)\r\x1b[K4.0 MiB / 4.0 MiB (100%)\n");
        assert_eq!(shown(true, None, &[]), "");
    }
}
