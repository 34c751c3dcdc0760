//! Helpers shared by the imaging tests: NIfTI files of any dtype and orientation made in
//! memory, by patching a header this crate wrote.

#![allow(dead_code)]

use abdoseg_imaging::{Geometry, Volume, nifti::write_labels};
use ndarray::Array3;

pub const RAS: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
pub const LPS: [[f64; 3]; 3] = [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]];
pub const LAS: [[f64; 3]; 3] = [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// An affine with voxel axes along `directions` (RAS unit vectors) and `spacing` mm.
pub fn affine(directions: [[f64; 3]; 3], spacing: [f64; 3]) -> [[f64; 4]; 4] {
    let mut a = [[0.0; 4]; 4];
    for f in 0..3 {
        for w in 0..3 {
            a[w][f] = directions[f][w] * spacing[f];
        }
    }
    a[0][3] = -100.0;
    a[1][3] = 50.0;
    a[2][3] = -20.0;
    a[3][3] = 1.0;
    a
}

pub fn geometry(shape: [usize; 3], directions: [[f64; 3]; 3]) -> Geometry {
    Geometry::new(shape, affine(directions, [0.8, 0.9, 2.5])).unwrap()
}

/// A valid uncompressed header (352 bytes, datatype uint8) for `geometry`.
pub fn header_bytes(geometry: &Geometry) -> Vec<u8> {
    let [i, j, k] = geometry.shape();
    let volume = Volume {
        geometry: geometry.clone(),
        data: Array3::<u8>::zeros((k, j, i)),
    };
    let mut bytes = write_labels(&volume, false).unwrap();
    bytes.truncate(352);
    bytes
}

pub fn set_i16(bytes: &mut [u8], offset: usize, value: i16) {
    bytes[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
}

pub fn set_i32(bytes: &mut [u8], offset: usize, value: i32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

pub fn set_f32(bytes: &mut [u8], offset: usize, value: f32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

/// Header field offsets of NIfTI-1.
pub mod offset {
    pub const DIM: usize = 40;
    pub const DATATYPE: usize = 70;
    pub const BITPIX: usize = 72;
    pub const PIXDIM: usize = 76;
    pub const VOX_OFFSET: usize = 108;
    pub const SCL_SLOPE: usize = 112;
    pub const SCL_INTER: usize = 116;
    pub const QFORM_CODE: usize = 252;
    pub const SFORM_CODE: usize = 254;
    pub const QUATERN_B: usize = 256;
    pub const SROW_X: usize = 280;
    pub const MAGIC: usize = 344;
}

/// A whole file: header retyped to `(datatype, bitpix)`, then `data`.
pub fn file(geometry: &Geometry, datatype: i16, bitpix: i16, data: &[u8]) -> Vec<u8> {
    let mut bytes = header_bytes(geometry);
    set_i16(&mut bytes, offset::DATATYPE, datatype);
    set_i16(&mut bytes, offset::BITPIX, bitpix);
    bytes.extend_from_slice(data);
    bytes
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}
