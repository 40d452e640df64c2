//! Command-line parameters without allocation: the first few are kept, all are counted.

const KEPT: usize = 4;

pub(crate) struct Params<'a> {
    items: [&'a [u8]; KEPT],
    len: usize,
}

impl<'a> Params<'a> {
    /// Splits a line (no `\n`) the way nsqd does: `\r` stripped, single-space separated.
    pub fn split(line: &'a [u8]) -> Params<'a> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut p = Params {
            items: [&[]; KEPT],
            len: 0,
        };
        for part in line.split(|b| *b == b' ') {
            if p.len < KEPT {
                p.items[p.len] = part;
            }
            p.len += 1;
        }
        p
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        (i < self.len.min(KEPT)).then(|| self.items[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsq_protocol::wire;

    #[test]
    fn matches_the_protocol_splitter() {
        for line in [
            &b"FIN 0123456789abcdef"[..],
            b"SUB a b\r",
            b"",
            b"A  B",
            b"a b c d e f",
        ] {
            let p = Params::split(line);
            let w = wire::split_params(line);
            assert_eq!(p.len(), w.len());
            for (i, part) in w.iter().enumerate().take(KEPT) {
                assert_eq!(p.get(i), Some(*part));
            }
        }
    }
}
