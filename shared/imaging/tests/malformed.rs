//! Malformed and hostile files: each gives its own clear error, never a panic, and never
//! an allocation of what the header merely claims.

mod common;

use abdoseg_imaging::{
    ImagingError,
    nifti::{ReadLimits, read_ct, read_labels, read_labels_on},
};
use common::*;

fn valid_i16() -> Vec<u8> {
    let geometry = geometry([4, 4, 2], RAS);
    file(&geometry, 4, 16, &[0u8; 4 * 4 * 2 * 2])
}

fn patched(patch: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = valid_i16();
    patch(&mut bytes);
    bytes
}

fn f32_file(values: &[f32]) -> Vec<u8> {
    let geometry = geometry([values.len(), 1, 1], RAS);
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    file(&geometry, 16, 32, &data)
}

fn err(bytes: &[u8]) -> ImagingError {
    match read_ct(bytes, &ReadLimits::default()) {
        Ok(_) => panic!("a malformed file was accepted"),
        Err(e) => e,
    }
}

macro_rules! expect {
    ($bytes:expr, $pattern:pat) => {{
        let bytes: &[u8] = &$bytes;
        let e = err(bytes);
        assert!(matches!(e, $pattern), "got {e:?}");
        // Every message says something specific.
        assert!(e.to_string().len() > 10);
    }};
}

#[test]
fn the_valid_baseline_reads() {
    assert!(read_ct(&valid_i16(), &ReadLimits::default()).is_ok());
}

#[test]
fn empty_and_foreign_files() {
    expect!([0u8; 0], ImagingError::Empty);
    expect!(
        b"PK\x03\x04 a zip file, not a volume"[..],
        ImagingError::NotNifti(_)
    );
    expect!(valid_i16()[..2], ImagingError::TruncatedHeader(2));
    expect!(valid_i16()[..200], ImagingError::TruncatedHeader(200));
    expect!(
        patched(|b| set_i32(b, 0, 540)),
        ImagingError::Nifti2Unsupported
    );
    expect!(
        patched(|b| b[344..348].copy_from_slice(b"ni1\0")),
        ImagingError::TwoFileFormat
    );
    expect!(
        patched(|b| b[344..348].copy_from_slice(b"XYZ\0")),
        ImagingError::BadMagic
    );
}

#[test]
fn dimensions() {
    expect!(
        patched(|b| set_i16(b, offset::DIM, 2)),
        ImagingError::Dimensionality(2)
    );
    expect!(
        patched(|b| {
            set_i16(b, offset::DIM, 4);
            set_i16(b, offset::DIM + 8, 5);
        }),
        ImagingError::FourDimensional(5)
    );
    expect!(
        patched(|b| set_i16(b, offset::DIM + 2, 0)),
        ImagingError::InvalidDimension { axis: 1, value: 0 }
    );
    expect!(
        patched(|b| set_i16(b, offset::DIM + 4, -3)),
        ImagingError::InvalidDimension { axis: 2, value: -3 }
    );
    // 32767³ int16 voxels: refused from the header alone, nothing allocated.
    expect!(
        patched(|b| {
            for axis in 1..=3 {
                set_i16(b, offset::DIM + 2 * axis, i16::MAX);
            }
        }),
        ImagingError::TooManyVoxels { .. }
    );
}

#[test]
fn a_configurable_voxel_limit_counts_voxels_not_bytes() {
    // valid_i16 holds 32 voxels (64 bytes): a 40-byte limit would pass a uint8 copy of
    // it, the voxel limit does not care about the stored type.
    let limits = ReadLimits {
        max_voxels: 31,
        ..ReadLimits::default()
    };
    let e = read_ct(&valid_i16(), &limits).unwrap_err();
    assert!(
        matches!(
            e,
            ImagingError::TooManyVoxels {
                voxels: 32,
                limit: 31
            }
        ),
        "{e:?}"
    );
    let limits = ReadLimits {
        max_voxels: 32,
        ..ReadLimits::default()
    };
    assert!(read_ct(&valid_i16(), &limits).is_ok());
}

#[test]
fn a_configurable_size_limit() {
    let limits = ReadLimits {
        max_bytes: 16,
        ..ReadLimits::default()
    };
    let e = read_ct(&valid_i16(), &limits).unwrap_err();
    assert!(
        matches!(
            e,
            ImagingError::TooLarge {
                bytes: 64,
                limit: 16
            }
        ),
        "{e:?}"
    );
}

#[test]
fn datatypes() {
    expect!(
        patched(|b| {
            set_i16(b, offset::DATATYPE, 32);
            set_i16(b, offset::BITPIX, 64);
        }),
        ImagingError::UnsupportedDatatype(32)
    );
    expect!(
        patched(|b| set_i16(b, offset::BITPIX, 8)),
        ImagingError::BitpixMismatch { .. }
    );
}

#[test]
fn spacing_and_offsets() {
    expect!(
        patched(|b| set_f32(b, offset::PIXDIM + 4, 0.0)),
        ImagingError::InvalidSpacing { axis: 1, .. }
    );
    expect!(
        patched(|b| set_f32(b, offset::PIXDIM + 8, -1.5)),
        ImagingError::InvalidSpacing { axis: 2, .. }
    );
    expect!(
        patched(|b| set_f32(b, offset::PIXDIM + 12, f32::NAN)),
        ImagingError::InvalidSpacing { axis: 3, .. }
    );
    expect!(
        patched(|b| set_f32(b, offset::VOX_OFFSET, 100.0)),
        ImagingError::InvalidVoxOffset(_)
    );
    expect!(
        patched(|b| set_f32(b, offset::VOX_OFFSET, 400.5)),
        ImagingError::InvalidVoxOffset(_)
    );
    expect!(
        patched(|b| set_f32(b, offset::VOX_OFFSET, 1.0e9)),
        ImagingError::ExtensionsTooLarge { .. }
    );
}

#[test]
fn transforms() {
    expect!(
        patched(|b| set_f32(b, offset::SROW_X, f32::NAN)),
        ImagingError::InvalidAffine
    );
    expect!(
        patched(|b| {
            for v in 0..12 {
                set_f32(b, offset::SROW_X + 4 * v, 0.0);
            }
        }),
        ImagingError::InvalidAffine
    );
    // A qform whose quaternion cannot be completed (the nifti crate would panic).
    expect!(
        patched(|b| {
            set_i16(b, offset::SFORM_CODE, 0);
            set_i16(b, offset::QFORM_CODE, 1);
            set_f32(b, offset::QUATERN_B, 3.0);
        }),
        ImagingError::InvalidAffine
    );
}

#[test]
fn truncation_and_corruption() {
    let full = valid_i16();
    expect!(full[..full.len() - 10], ImagingError::TruncatedData { .. });
    // Extensions promised by vox_offset but absent.
    expect!(
        patched(|b| {
            set_f32(b, offset::VOX_OFFSET, 1024.0);
            b.truncate(600);
        }),
        ImagingError::TruncatedData { .. }
    );
    let gz = gzip(&full);
    expect!(
        gz[..gz.len() / 2],
        ImagingError::CorruptGzip(_) | ImagingError::TruncatedData { .. }
    );
    let mut corrupt = gz.clone();
    let middle = corrupt.len() / 2;
    for byte in &mut corrupt[middle..middle + 8] {
        *byte ^= 0xA5;
    }
    expect!(corrupt, ImagingError::CorruptGzip(_));
    // A damaged checksum at the very end.
    let mut bad_crc = gz;
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xFF;
    expect!(bad_crc, ImagingError::CorruptGzip(_));
}

#[test]
fn non_finite_voxels() {
    expect!(
        f32_file(&[1.0, f32::NAN, 3.0]),
        ImagingError::NonFiniteVoxels { count: 1 }
    );
    expect!(
        f32_file(&[f32::INFINITY, f32::NEG_INFINITY, 0.0]),
        ImagingError::NonFiniteVoxels { count: 2 }
    );
}

#[test]
fn label_maps() {
    let geometry = geometry([3, 1, 1], RAS);
    let bad = file(&geometry, 2, 8, &[0, 7, 1]);
    let e = read_labels(&bad, &ReadLimits::default()).unwrap_err();
    assert!(
        matches!(e, ImagingError::InvalidLabel { value } if value == 7.0),
        "{e:?}"
    );
    let fractional = f32_file(&[0.0, 1.5, 2.0]);
    let e = read_labels(&fractional, &ReadLimits::default()).unwrap_err();
    assert!(matches!(e, ImagingError::InvalidLabel { .. }), "{e:?}");

    let image = read_ct(&valid_i16(), &ReadLimits::default()).unwrap();
    let other_grid = geometry_of_other_shape();
    let e = read_labels_on(&image.geometry, &other_grid, &ReadLimits::default()).unwrap_err();
    assert!(matches!(e, ImagingError::GridMismatch { .. }), "{e:?}");
    // Same shape, shifted origin: still a different grid.
    let mut shifted = valid_labels();
    set_f32(&mut shifted, offset::SROW_X + 12, 5.0);
    let e = read_labels_on(&image.geometry, &shifted, &ReadLimits::default()).unwrap_err();
    assert!(matches!(e, ImagingError::GridMismatch { .. }), "{e:?}");
    assert!(read_labels_on(&image.geometry, &valid_labels(), &ReadLimits::default()).is_ok());
}

fn valid_labels() -> Vec<u8> {
    file(&geometry([4, 4, 2], RAS), 2, 8, &[0u8; 32])
}

fn geometry_of_other_shape() -> Vec<u8> {
    file(&geometry([4, 3, 2], RAS), 2, 8, &[0u8; 24])
}
