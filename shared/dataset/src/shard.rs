//! The slice shard: one case's preprocessed axial slices and labels at model resolution,
//! in one object that a trainer reads whole or one slice at a time (a range read).
//!
//! Layout, little-endian: a 32-byte header — magic `ABDSLC01`, format version (u32),
//! slice count, height, width (u32 each), pixel kind (u8: 0 gray u8, 1 float32), 7 bytes
//! of zeros — then per slice the image (height × width pixels) and the labels
//! (height × width bytes).

use ndarray::Array2;

const MAGIC: &[u8; 8] = b"ABDSLC01";
pub const HEADER_BYTES: usize = 32;

/// How a shard stores pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelKind {
    /// Gray levels 0–255 (`none`, `he`, `clahe`); model input is gray / 255.
    Gray,
    /// Floats as they are (`zscore`).
    Float,
}

impl PixelKind {
    fn bytes(self) -> usize {
        match self {
            PixelKind::Gray => 1,
            PixelKind::Float => 4,
        }
    }
}

/// The fixed facts of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardHeader {
    pub slices: usize,
    pub height: usize,
    pub width: usize,
    pub kind: PixelKind,
}

impl ShardHeader {
    /// Bytes of one slice record: image then labels.
    pub fn slice_bytes(&self) -> usize {
        self.height * self.width * (self.kind.bytes() + 1)
    }

    /// Byte range of slice `index`, for a range read.
    pub fn slice_range(&self, index: usize) -> std::ops::Range<u64> {
        let start = HEADER_BYTES + index * self.slice_bytes();
        start as u64..(start + self.slice_bytes()) as u64
    }

    pub fn total_bytes(&self) -> usize {
        HEADER_BYTES + self.slices * self.slice_bytes()
    }

    /// Parses and checks a header against the size of the object it came from.
    pub fn parse(bytes: &[u8], object_size: u64) -> Result<Self, String> {
        if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
            return Err("not an abdoseg slice shard".into());
        }
        let word = |i: usize| {
            u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]) as usize
        };
        if word(8) != 1 {
            return Err(format!("shard format version {} is not supported", word(8)));
        }
        let kind = match bytes[24] {
            0 => PixelKind::Gray,
            1 => PixelKind::Float,
            other => return Err(format!("unknown pixel kind {other}")),
        };
        let header = Self {
            slices: word(12),
            height: word(16),
            width: word(20),
            kind,
        };
        if header.total_bytes() as u64 != object_size {
            return Err(format!(
                "shard is {object_size} bytes but its header describes {}",
                header.total_bytes()
            ));
        }
        Ok(header)
    }
}

/// Builds a shard in memory.
#[derive(Debug)]
pub struct ShardWriter {
    header: ShardHeader,
    bytes: Vec<u8>,
}

impl ShardWriter {
    pub fn new(slices: usize, height: usize, width: usize, kind: PixelKind) -> Self {
        let header = ShardHeader {
            slices,
            height,
            width,
            kind,
        };
        let mut bytes = Vec::with_capacity(header.total_bytes());
        bytes.extend_from_slice(MAGIC);
        for word in [1u32, slices as u32, height as u32, width as u32] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.push(match kind {
            PixelKind::Gray => 0,
            PixelKind::Float => 1,
        });
        bytes.resize(HEADER_BYTES, 0);
        Self { header, bytes }
    }

    /// Appends a gray slice and its labels.
    pub fn push_gray(&mut self, image: &Array2<u8>, labels: &Array2<u8>) {
        debug_assert_eq!(self.header.kind, PixelKind::Gray);
        self.bytes.extend(image.iter());
        self.bytes.extend(labels.iter());
    }

    /// Appends a float slice and its labels.
    pub fn push_float(&mut self, image: &Array2<f32>, labels: &Array2<u8>) {
        debug_assert_eq!(self.header.kind, PixelKind::Float);
        for v in image.iter() {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.bytes.extend(labels.iter());
    }

    pub fn finish(self) -> Result<Vec<u8>, String> {
        if self.bytes.len() != self.header.total_bytes() {
            return Err(format!(
                "shard holds {} bytes, its header promises {}",
                self.bytes.len(),
                self.header.total_bytes()
            ));
        }
        Ok(self.bytes)
    }
}

/// One decoded slice: model input and labels.
pub type DecodedSlice = (Array2<f32>, Array2<u8>);

/// Decodes one slice record (from [`ShardHeader::slice_range`]) into model input and labels.
pub fn decode_slice(header: &ShardHeader, record: &[u8]) -> Result<DecodedSlice, String> {
    if record.len() != header.slice_bytes() {
        return Err(format!(
            "slice record is {} bytes, expected {}",
            record.len(),
            header.slice_bytes()
        ));
    }
    let pixels = header.height * header.width;
    let shape = (header.height, header.width);
    let (image_bytes, label_bytes) = record.split_at(pixels * header.kind.bytes());
    let image: Vec<f32> = match header.kind {
        PixelKind::Gray => image_bytes.iter().map(|&v| f32::from(v) / 255.0).collect(),
        PixelKind::Float => image_bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    };
    let image = Array2::from_shape_vec(shape, image).map_err(|e| e.to_string())?;
    let labels = Array2::from_shape_vec(shape, label_bytes.to_vec()).map_err(|e| e.to_string())?;
    Ok((image, labels))
}

/// Every slice of a whole shard.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<DecodedSlice>, String> {
    let header = ShardHeader::parse(bytes, bytes.len() as u64)?;
    (0..header.slices)
        .map(|i| {
            let range = header.slice_range(i);
            decode_slice(&header, &bytes[range.start as usize..range.end as usize])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_range_reads() {
        let mut writer = ShardWriter::new(2, 3, 4, PixelKind::Gray);
        let image = Array2::from_shape_fn((3, 4), |(y, x)| (y * 4 + x) as u8 * 10);
        let labels = Array2::from_shape_fn((3, 4), |(y, x)| ((y + x) % 5) as u8);
        writer.push_gray(&image, &labels);
        writer.push_gray(&image.mapv(|v| 255 - v), &labels);
        let bytes = writer.finish().unwrap();
        let header = ShardHeader::parse(&bytes, bytes.len() as u64).unwrap();
        assert_eq!(header.slices, 2);
        let range = header.slice_range(1);
        let (second, second_labels) =
            decode_slice(&header, &bytes[range.start as usize..range.end as usize]).unwrap();
        assert_eq!(second_labels, labels);
        assert!((second[[0, 0]] - 1.0).abs() < 1e-6);
        assert_eq!(decode_all(&bytes).unwrap().len(), 2);
    }

    #[test]
    fn damage_is_detected() {
        let mut writer = ShardWriter::new(1, 2, 2, PixelKind::Float);
        writer.push_float(&Array2::zeros((2, 2)), &Array2::zeros((2, 2)));
        let bytes = writer.finish().unwrap();
        assert!(ShardHeader::parse(&bytes[..bytes.len() - 1], (bytes.len() - 1) as u64).is_err());
        assert!(ShardHeader::parse(b"not a shard at all, just text....", 33).is_err());
        let incomplete = ShardWriter::new(2, 2, 2, PixelKind::Gray);
        assert!(incomplete.finish().is_err());
    }
}
