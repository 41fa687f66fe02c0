//! A minimal POSIX ustar writer: an image layer is a tar stream, and the lab's layers are a few
//! small files, so 512-byte headers written by hand keep the bytes (and so the digests) fully
//! determined by the catalogue, with no archive crate in the tree.

/// Size of a tar block: headers and file data are padded to it.
pub const BLOCK: usize = 512;

/// One entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory; the path ends with `/`.
    Dir {
        /// Path relative to the root, e.g. `etc/netlab/`.
        path: String,
    },
    /// A regular file.
    File {
        /// Path relative to the root, e.g. `etc/netlab/app.json`.
        path: String,
        /// Permission bits, e.g. 0o644.
        mode: u32,
        /// Contents.
        data: Vec<u8>,
    },
}

/// The modification time written into every header: fixed, so layers are byte-for-byte
/// reproducible (2024-01-01T00:00:00Z, the `created` time of every image).
pub const MTIME: u64 = 1_704_067_200;

/// The tar stream for `entries`, ended by the two zero blocks the format requires.
///
/// Paths must fit the 100-byte name field (the lab's do; longer ones would need the prefix
/// field): a longer path is a programming error in the catalogue, caught by the unit tests.
pub fn archive(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        match entry {
            Entry::Dir { path } => out.extend_from_slice(&header(path, 0o755, 0, b'5')),
            Entry::File { path, mode, data } => {
                out.extend_from_slice(&header(path, *mode, data.len() as u64, b'0'));
                out.extend_from_slice(data);
                out.resize(out.len().next_multiple_of(BLOCK), 0);
            }
        }
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

/// One ustar header block.
fn header(path: &str, mode: u32, size: u64, typeflag: u8) -> [u8; BLOCK] {
    debug_assert!(path.len() <= 100, "tar path longer than the name field: {path}");
    let mut h = [0u8; BLOCK];
    put(&mut h[0..100], path.as_bytes());
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0); // uid
    octal(&mut h[116..124], 0); // gid
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], MTIME);
    h[148..156].fill(b' '); // the checksum is computed with its own field as spaces
    h[156] = typeflag;
    put(&mut h[257..263], b"ustar\0");
    put(&mut h[263..265], b"00");
    put(&mut h[265..297], b"root");
    put(&mut h[297..329], b"root");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    // Six octal digits, NUL, space: the layout GNU tar writes.
    let digits = format!("{sum:06o}\0 ");
    put(&mut h[148..156], digits.as_bytes());
    h
}

/// Copies `value` into the start of `field` (the rest stays NUL).
fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Zero-padded octal with a trailing NUL, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let digits = format!("{value:0width$o}");
    put(field, digits.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(h: &[u8], range: std::ops::Range<usize>) -> String {
        String::from_utf8_lossy(&h[range]).trim_end_matches(['\0', ' ']).to_string()
    }

    #[test]
    fn layout_headers_data_padding_and_trailer() {
        let tar = archive(&[
            Entry::Dir { path: "etc/".into() },
            Entry::File { path: "etc/app".into(), mode: 0o644, data: b"hello\n".to_vec() },
        ]);
        // dir header + file header + one data block + two zero blocks
        assert_eq!(tar.len(), 5 * BLOCK);
        let dir = &tar[0..BLOCK];
        assert_eq!(field(dir, 0..100), "etc/");
        assert_eq!(dir[156], b'5');
        assert_eq!(field(dir, 100..108), "0000755");
        let file = &tar[BLOCK..2 * BLOCK];
        assert_eq!(field(file, 0..100), "etc/app");
        assert_eq!(file[156], b'0');
        assert_eq!(u64::from_str_radix(&field(file, 124..136), 8).unwrap(), 6);
        assert_eq!(u64::from_str_radix(&field(file, 136..148), 8).unwrap(), MTIME);
        assert_eq!(&file[257..263], b"ustar\0");
        assert_eq!(&file[263..265], b"00");
        assert_eq!(&tar[2 * BLOCK..2 * BLOCK + 6], b"hello\n");
        assert!(tar[2 * BLOCK + 6..].iter().all(|b| *b == 0));
    }

    #[test]
    fn checksum_matches_the_header_sum() {
        let tar = archive(&[Entry::File { path: "a".into(), mode: 0o600, data: vec![1; 700] }]);
        let h = &tar[0..BLOCK];
        let stored = u32::from_str_radix(&field(h, 148..154), 8).unwrap();
        assert_eq!(h[154], 0);
        assert_eq!(h[155], b' ');
        let computed: u32 =
            h.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { u32::from(*b) }).sum();
        assert_eq!(stored, computed);
        // 700 bytes of data take two blocks.
        assert_eq!(tar.len(), BLOCK + 2 * BLOCK + 2 * BLOCK);
    }

    #[test]
    fn same_entries_same_bytes() {
        let entries = [Entry::File { path: "x".into(), mode: 0o644, data: b"x".to_vec() }];
        assert_eq!(archive(&entries), archive(&entries));
    }
}
