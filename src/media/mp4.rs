//! Reads the top-level box order of an ISO-BMFF (MP4/MOV) file.
//!
//! A browser can start playing an MP4 before it has the whole file only when the index
//! (`moov`) comes before the media data (`mdat`): "faststart". A file that is already H.264/AAC
//! with its index in front needs no ffmpeg pass at all, which is the common case for direct
//! links and saves a full copy of the file.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Top-level boxes inspected before giving up; real files have a handful.
const MAX_BOXES: usize = 64;

/// `Some(true)` when `moov` precedes `mdat`, `Some(false)` when `mdat` comes first, `None`
/// when the file is not a readable box sequence containing either.
pub fn is_faststart(path: &Path) -> std::io::Result<Option<bool>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    faststart_in(&mut file, len)
}

fn faststart_in<R: Read + Seek>(reader: &mut R, len: u64) -> std::io::Result<Option<bool>> {
    let mut offset = 0u64;
    for _ in 0..MAX_BOXES {
        if offset.saturating_add(8) > len {
            return Ok(None);
        }
        reader.seek(SeekFrom::Start(offset))?;
        let mut header = [0u8; 8];
        reader.read_exact(&mut header)?;
        let size32 = u32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
        let kind = &header[4..8];
        let size = match size32 {
            0 => len - offset, // the box runs to the end of the file
            1 => {
                let mut large = [0u8; 8];
                reader.read_exact(&mut large)?;
                u64::from_be_bytes(large)
            }
            n => u64::from(n),
        };
        match kind {
            b"moov" => return Ok(Some(true)),
            b"mdat" => return Ok(Some(false)),
            _ => {}
        }
        if size < 8 {
            return Ok(None);
        }
        offset = offset.saturating_add(size);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn boxed(kind: &[u8; 4], payload: usize) -> Vec<u8> {
        let mut b = ((payload + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend(std::iter::repeat_n(0u8, payload));
        b
    }

    fn check(bytes: Vec<u8>) -> Option<bool> {
        let len = bytes.len() as u64;
        faststart_in(&mut Cursor::new(bytes), len).unwrap()
    }

    #[test]
    fn finds_the_order_of_moov_and_mdat() {
        let fast = [boxed(b"ftyp", 16), boxed(b"moov", 40), boxed(b"mdat", 100)].concat();
        assert_eq!(check(fast), Some(true));
        let slow = [
            boxed(b"ftyp", 16),
            boxed(b"free", 0),
            boxed(b"mdat", 100),
            boxed(b"moov", 40),
        ]
        .concat();
        assert_eq!(check(slow), Some(false));
    }

    #[test]
    fn handles_64_bit_sizes_and_garbage() {
        let mut large = 1u32.to_be_bytes().to_vec();
        large.extend_from_slice(b"free");
        large.extend_from_slice(&24u64.to_be_bytes());
        large.extend_from_slice(&[0u8; 8]);
        let file = [boxed(b"ftyp", 8), large, boxed(b"moov", 8)].concat();
        assert_eq!(check(file), Some(true));
        assert_eq!(check(b"hello, this is not a video at all".to_vec()), None);
        assert_eq!(check(Vec::new()), None);
        // A zero-size box that is not moov/mdat swallows the rest of the file.
        assert_eq!(
            check([boxed(b"ftyp", 8), vec![0, 0, 0, 0, b'f', b'r', b'e', b'e']].concat()),
            None
        );
    }
}
