//! Reading `.nii` and `.nii.gz` from bytes, with every declared size checked first.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use ndarray::Array3;
use rayon::prelude::*;

use super::header::{CheckedHeader, HEADER_SIZE, check};
use crate::{Geometry, ImagingError, Volume};

/// Upper bounds on what a file may make the reader allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Voxel data in bytes, decompressed (default 2 GiB: 512×512×2048 int16).
    pub max_bytes: u64,
    /// Header extensions in bytes (default 16 MiB).
    pub max_extension_bytes: u64,
    /// Voxels once decoded (default 2^29: 512×512×2048), whatever their stored type:
    /// a uint8 file decodes to four times its size in float32.
    pub max_voxels: u64,
}

/// The default voxel limit: 512×512×2048.
pub const DEFAULT_MAX_VOXELS: u64 = 1 << 29;

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_bytes: 2 << 30,
            max_extension_bytes: 16 << 20,
            max_voxels: DEFAULT_MAX_VOXELS,
        }
    }
}

/// Trailing bytes after the voxel data that are read (and discarded) so that gzip checks
/// its CRC; more than this is left unread.
const MAX_TRAILING: u64 = 1 << 20;

struct Raw {
    header: CheckedHeader,
    data: Vec<u8>,
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

fn gzip_error(error: io::Error) -> ImagingError {
    ImagingError::CorruptGzip(error.to_string())
}

/// Reads as many bytes as `buf` holds, fewer only at the end of the stream.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn read_raw(bytes: &[u8], limits: &ReadLimits, with_data: bool) -> Result<Raw, ImagingError> {
    if bytes.is_empty() {
        return Err(ImagingError::Empty);
    }
    let gzip = is_gzip(bytes);
    let mut reader: Box<dyn Read + '_> = if gzip {
        Box::new(MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut raw_header = [0u8; HEADER_SIZE];
    let got = read_full(&mut reader, &mut raw_header).map_err(gzip_error)?;
    let header = check(&raw_header[..got], limits)?;
    if !with_data {
        return Ok(Raw {
            header,
            data: Vec::new(),
        });
    }

    let skipped = io::copy(
        &mut (&mut reader).take(header.extension_bytes),
        &mut io::sink(),
    )
    .map_err(gzip_error)?;
    if skipped < header.extension_bytes {
        return Err(ImagingError::TruncatedData {
            expected: header.data_bytes,
            got: 0,
        });
    }
    // Allocation happens only now, for a size checked against the limits.
    let mut data = Vec::with_capacity(header.data_bytes as usize);
    (&mut reader)
        .take(header.data_bytes)
        .read_to_end(&mut data)
        .map_err(gzip_error)?;
    if (data.len() as u64) < header.data_bytes {
        return Err(ImagingError::TruncatedData {
            expected: header.data_bytes,
            got: data.len() as u64,
        });
    }
    if gzip {
        // Reaching the end of the stream makes gzip verify its checksum.
        io::copy(&mut reader.take(MAX_TRAILING), &mut io::sink()).map_err(gzip_error)?;
    }
    Ok(Raw { header, data })
}

impl Raw {
    fn shape(&self) -> (usize, usize, usize) {
        let [i, j, k] = self.header.geometry.shape();
        (k, j, i)
    }

    /// Decodes every voxel with scaling applied, in parallel.
    fn decode<T: Send>(&self, convert: impl Fn(f64) -> T + Sync) -> Vec<T> {
        let h = &self.header;
        let size = h.dtype.size();
        let (slope, inter) = (h.slope, h.inter);
        self.data
            .par_chunks_exact(size)
            .map(|bytes| convert(h.dtype.decode(bytes, h.big_endian) * slope + inter))
            .collect()
    }
}

/// What a header declares, validated: enough to estimate the memory a read will take
/// before taking it.
#[derive(Debug, Clone)]
pub struct VolumeInfo {
    pub geometry: Geometry,
    /// Voxel data as stored, decompressed, in bytes.
    pub data_bytes: u64,
}

impl VolumeInfo {
    /// Voxels of the volume.
    pub fn voxels(&self) -> u64 {
        self.geometry.shape().iter().map(|&n| n as u64).product()
    }

    /// The volume on the canonical grid: `(axial slices, rows, columns)`, whatever the
    /// file's voxel order.
    pub fn axial_shape(&self) -> (u64, u64, u64) {
        let [x, y, z] = crate::orientation::Reorientation::from_affine(&self.geometry.affine())
            .canonical_shape(self.geometry.shape());
        (z as u64, y as u64, x as u64)
    }
}

/// Reads only the header (decompressing its first bytes): what reading the data would
/// allocate, checked against the limits.
pub fn read_info(bytes: &[u8], limits: &ReadLimits) -> Result<VolumeInfo, ImagingError> {
    let header = read_raw(bytes, limits, false)?.header;
    Ok(VolumeInfo {
        geometry: header.geometry,
        data_bytes: header.data_bytes,
    })
}

/// Reads only the header: the geometry of a volume, validated.
pub fn read_geometry(bytes: &[u8], limits: &ReadLimits) -> Result<Geometry, ImagingError> {
    Ok(read_raw(bytes, limits, false)?.header.geometry)
}

/// Reads a CT volume in HU (`scl_slope`/`scl_inter` applied). NaN or infinite voxels are
/// an error.
pub fn read_ct(bytes: &[u8], limits: &ReadLimits) -> Result<Volume<f32>, ImagingError> {
    let raw = read_raw(bytes, limits, true)?;
    let values = raw.decode(|v| v as f32);
    let count = values.par_iter().filter(|v| !v.is_finite()).count();
    if count > 0 {
        return Err(ImagingError::NonFiniteVoxels { count });
    }
    let data = Array3::from_shape_vec(raw.shape(), values)
        .map_err(|e| ImagingError::InvalidParameter(e.to_string()))?;
    Ok(Volume {
        geometry: raw.header.geometry,
        data,
    })
}

/// Reads a label map: every voxel must be a class value 0–4, in any dtype.
pub fn read_labels(bytes: &[u8], limits: &ReadLimits) -> Result<Volume<u8>, ImagingError> {
    let mut identity = [None; 256];
    for (class, slot) in identity.iter_mut().enumerate().take(crate::NUM_CLASSES) {
        *slot = Some(class as u8);
    }
    read_labels_remapped(bytes, limits, &identity)
}

/// Reads a label map whose values (integers 0–255) `remap` translates into classes, e.g.
/// an nnU-Net dataset whose `dataset.json` numbers the organs differently. A value with
/// no translation is an error.
pub fn read_labels_remapped(
    bytes: &[u8],
    limits: &ReadLimits,
    remap: &[Option<u8>; 256],
) -> Result<Volume<u8>, ImagingError> {
    let raw = read_raw(bytes, limits, true)?;
    const INVALID: u8 = u8::MAX;
    let values = raw.decode(|v| {
        if v.fract() == 0.0 && (0.0..256.0).contains(&v) {
            remap[v as usize].unwrap_or(INVALID)
        } else {
            INVALID
        }
    });
    if let Some(position) = values.iter().position(|&v| v == INVALID) {
        let h = &raw.header;
        let size = h.dtype.size();
        let bytes = &raw.data[position * size..(position + 1) * size];
        return Err(ImagingError::InvalidLabel {
            value: h.dtype.decode(bytes, h.big_endian) * h.slope + h.inter,
        });
    }
    let data = Array3::from_shape_vec(raw.shape(), values)
        .map_err(|e| ImagingError::InvalidParameter(e.to_string()))?;
    Ok(Volume {
        geometry: raw.header.geometry,
        data,
    })
}

/// Reads a label map that must lie on `image`'s grid.
pub fn read_labels_on(
    image: &Geometry,
    bytes: &[u8],
    limits: &ReadLimits,
) -> Result<Volume<u8>, ImagingError> {
    let labels = read_labels(bytes, limits)?;
    if !image.same_grid(&labels.geometry) {
        return Err(ImagingError::GridMismatch {
            image: image.describe(),
            label: labels.geometry.describe(),
        });
    }
    Ok(labels)
}
