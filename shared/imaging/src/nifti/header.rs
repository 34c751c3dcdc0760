//! Header checks: everything a header declares is validated before it is trusted.

use nifti::{NiftiHeader, header::MAGIC_CODE_NIP1};

use super::{Dtype, ReadLimits};
use crate::{Geometry, ImagingError};

pub(crate) const HEADER_SIZE: usize = 348;
const TWO_FILE_MAGIC: &[u8; 4] = b"ni1\0";

/// A header that passed every check, with what reading the data needs.
pub(crate) struct CheckedHeader {
    pub geometry: Geometry,
    pub dtype: Dtype,
    pub data_bytes: u64,
    pub extension_bytes: u64,
    pub big_endian: bool,
    pub slope: f64,
    pub inter: f64,
}

/// Classifies the first bytes of a file before parsing.
pub(crate) fn sniff(raw: &[u8]) -> Result<(), ImagingError> {
    if raw.len() < 4 {
        return Err(if raw.is_empty() {
            ImagingError::Empty
        } else {
            ImagingError::TruncatedHeader(raw.len())
        });
    }
    let size_le = i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let size_be = i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    if size_le == 540 || size_be == 540 {
        return Err(ImagingError::Nifti2Unsupported);
    }
    if size_le != HEADER_SIZE as i32 && size_be != HEADER_SIZE as i32 {
        return Err(ImagingError::NotNifti(i64::from(size_le)));
    }
    if raw.len() < HEADER_SIZE {
        return Err(ImagingError::TruncatedHeader(raw.len()));
    }
    match &raw[344..348] {
        magic if magic == MAGIC_CODE_NIP1 => Ok(()),
        magic if magic == TWO_FILE_MAGIC => Err(ImagingError::TwoFileFormat),
        _ => Err(ImagingError::BadMagic),
    }
}

/// Parses and validates a 348-byte header.
pub(crate) fn check(raw: &[u8], limits: &ReadLimits) -> Result<CheckedHeader, ImagingError> {
    sniff(raw)?;
    let mut header = NiftiHeader::from_reader(&raw[..HEADER_SIZE])
        .map_err(|_| ImagingError::NotNifti(i64::from(raw.len() as u32)))?;
    // qfac other than ±1 means 1 (as nibabel reads it).
    header.fix();

    let ndim = header.dim[0];
    match ndim {
        3 => {}
        4 if header.dim[4] <= 1 => {}
        4 => return Err(ImagingError::FourDimensional(header.dim[4])),
        other => return Err(ImagingError::Dimensionality(other)),
    }
    let mut voxels: u64 = 1;
    for axis in 1..=3 {
        // The field is a signed 16-bit integer in the standard.
        let value = i64::from(header.dim[axis] as i16);
        if value < 1 {
            return Err(ImagingError::InvalidDimension { axis, value });
        }
        voxels *= value as u64;
    }

    let dtype = Dtype::from_code(header.datatype)
        .ok_or(ImagingError::UnsupportedDatatype(header.datatype))?;
    let expected_bitpix = (dtype.size() * 8) as i16;
    if header.bitpix != expected_bitpix {
        return Err(ImagingError::BitpixMismatch {
            datatype: header.datatype,
            bitpix: header.bitpix,
            expected: expected_bitpix,
        });
    }
    if voxels > limits.max_voxels {
        return Err(ImagingError::TooManyVoxels {
            voxels,
            limit: limits.max_voxels,
        });
    }
    let data_bytes = voxels * dtype.size() as u64;
    if data_bytes > limits.max_bytes {
        return Err(ImagingError::TooLarge {
            bytes: data_bytes,
            limit: limits.max_bytes,
        });
    }

    for axis in 1..=3 {
        let value = header.pixdim[axis];
        if !(value.is_finite() && value > 0.0) {
            return Err(ImagingError::InvalidSpacing { axis, value });
        }
    }

    let offset = header.vox_offset;
    if !offset.is_finite() || offset.fract() != 0.0 || offset < 352.0 {
        return Err(ImagingError::InvalidVoxOffset(offset));
    }
    let extension_bytes = offset as u64 - HEADER_SIZE as u64;
    if extension_bytes > limits.max_extension_bytes {
        return Err(ImagingError::ExtensionsTooLarge {
            bytes: extension_bytes,
            limit: limits.max_extension_bytes,
        });
    }

    check_transforms(&header)?;
    // nibabel's rule: a slope of 0 or a non-finite slope means "unscaled".
    let (slope, inter) = match (header.scl_slope, header.scl_inter) {
        (s, i) if s.is_finite() && s != 0.0 && i.is_finite() => (f64::from(s), f64::from(i)),
        (s, _) if s.is_finite() && s != 0.0 => (f64::from(s), 0.0),
        _ => (1.0, 0.0),
    };
    let big_endian = header.endianness == nifti::Endianness::Big;
    let geometry = Geometry::from_header(header)?;
    Ok(CheckedHeader {
        geometry,
        dtype,
        data_bytes,
        extension_bytes,
        big_endian,
        slope,
        inter,
    })
}

/// The `nifti` crate panics on quaternions it cannot complete; refuse them first.
fn check_transforms(header: &NiftiHeader) -> Result<(), ImagingError> {
    let uses_qform = header.sform_code == 0 && header.qform_code != 0;
    if uses_qform {
        let [b, c, d] = [header.quatern_b, header.quatern_c, header.quatern_d].map(f64::from);
        let norm = b * b + c * c + d * d;
        let offsets = [header.quatern_x, header.quatern_y, header.quatern_z];
        if !norm.is_finite() || norm > 1.0 + 1e-6 || !offsets.iter().all(|v| v.is_finite()) {
            return Err(ImagingError::InvalidAffine);
        }
    }
    Ok(())
}
