//! Writing volumes with exactly the source geometry: the source header is kept field for
//! field (affine, pixdim, qform/sform codes, units) except the datatype, scaling and the
//! free-text fields, which are cleared. Written little-endian, gzipped on request.
//!
//! The `nifti` crate writes only to file paths; the store needs bytes, so the 348-byte
//! header is serialized here.

use std::io::Write;

use flate2::{Compression, write::GzEncoder};
use nifti::NiftiHeader;

use super::Dtype;
use crate::{ImagingError, Volume};

fn serialize_header(h: &NiftiHeader, dtype: Dtype, out: &mut Vec<u8>) {
    fn put(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(bytes);
    }
    put(out, &348i32.to_le_bytes());
    put(out, &[0u8; 10]); // data_type (unused text)
    put(out, &[0u8; 18]); // db_name (text, never copied)
    put(out, &0i32.to_le_bytes()); // extents
    put(out, &0i16.to_le_bytes()); // session_error
    put(out, &[b'r', h.dim_info]); // regular, dim_info
    let ndim = 3u16;
    put(out, &ndim.to_le_bytes());
    for d in 1..8 {
        let value = if d <= 3 { h.dim[d] } else { 1 };
        put(out, &value.to_le_bytes());
    }
    for p in [h.intent_p1, h.intent_p2, h.intent_p3] {
        put(out, &p.to_le_bytes());
    }
    put(out, &0i16.to_le_bytes()); // intent_code: none
    put(out, &dtype.code().to_le_bytes());
    put(out, &((dtype.size() * 8) as i16).to_le_bytes());
    put(out, &h.slice_start.to_le_bytes());
    let mut pixdim = h.pixdim;
    for p in pixdim.iter_mut().skip(4) {
        *p = 0.0;
    }
    for p in pixdim {
        put(out, &p.to_le_bytes());
    }
    put(out, &352f32.to_le_bytes()); // vox_offset
    put(out, &1f32.to_le_bytes()); // scl_slope
    put(out, &0f32.to_le_bytes()); // scl_inter
    put(out, &h.slice_end.to_le_bytes());
    put(out, &[h.slice_code, h.xyzt_units]);
    put(out, &0f32.to_le_bytes()); // cal_max
    put(out, &0f32.to_le_bytes()); // cal_min
    put(out, &h.slice_duration.to_le_bytes());
    put(out, &h.toffset.to_le_bytes());
    put(out, &0i32.to_le_bytes()); // glmax
    put(out, &0i32.to_le_bytes()); // glmin
    put(out, &[0u8; 80]); // descrip (text, never copied)
    put(out, &[0u8; 24]); // aux_file (text, never copied)
    put(out, &h.qform_code.to_le_bytes());
    put(out, &h.sform_code.to_le_bytes());
    for q in [
        h.quatern_b,
        h.quatern_c,
        h.quatern_d,
        h.quatern_x,
        h.quatern_y,
        h.quatern_z,
    ] {
        put(out, &q.to_le_bytes());
    }
    for row in [h.srow_x, h.srow_y, h.srow_z] {
        for v in row {
            put(out, &v.to_le_bytes());
        }
    }
    put(out, &[0u8; 16]); // intent_name (text, never copied)
    put(out, b"n+1\0");
    put(out, &[0u8; 4]); // no extensions
    debug_assert_eq!(out.len(), 352);
}

fn encode<T>(
    volume: &Volume<T>,
    dtype: Dtype,
    gzip: bool,
    to_bytes: impl Fn(&T, &mut Vec<u8>),
) -> Result<Vec<u8>, ImagingError> {
    let mut raw = Vec::with_capacity(352 + volume.data.len() * dtype.size());
    serialize_header(volume.geometry.header(), dtype, &mut raw);
    // (k, j, i) in C order is the NIfTI order: i fastest.
    for value in volume.data.iter() {
        to_bytes(value, &mut raw);
    }
    if !gzip {
        return Ok(raw);
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(raw.len() / 4), Compression::fast());
    encoder
        .write_all(&raw)
        .map_err(|e| ImagingError::Write(e.to_string()))?;
    encoder
        .finish()
        .map_err(|e| ImagingError::Write(e.to_string()))
}

/// A uint8 label map on its source grid.
pub fn write_labels(labels: &Volume<u8>, gzip: bool) -> Result<Vec<u8>, ImagingError> {
    encode(labels, Dtype::U8, gzip, |v, out| out.push(*v))
}

/// A uint8 preprocessed CT (windowed, `he` or `clahe`) on its source grid.
pub fn write_ct_u8(volume: &Volume<u8>, gzip: bool) -> Result<Vec<u8>, ImagingError> {
    encode(volume, Dtype::U8, gzip, |v, out| out.push(*v))
}

/// A float32 volume (HU, or `zscore` output) on its source grid.
pub fn write_f32(volume: &Volume<f32>, gzip: bool) -> Result<Vec<u8>, ImagingError> {
    encode(volume, Dtype::F32, gzip, |v, out| {
        out.extend_from_slice(&v.to_le_bytes())
    })
}

/// An int16 volume (HU, as scanners store it) on its source grid.
pub fn write_i16(volume: &Volume<i16>, gzip: bool) -> Result<Vec<u8>, ImagingError> {
    encode(volume, Dtype::I16, gzip, |v, out| {
        out.extend_from_slice(&v.to_le_bytes())
    })
}
