//! Reading every dtype, with scaling, in every orientation, and writing back with the
//! identical geometry.

mod common;

use abdoseg_imaging::{
    Volume,
    nifti::{ReadLimits, read_ct, read_labels, write_f32, write_i16, write_labels},
    slices::Canonical,
};
use common::*;
use ndarray::Array3;

const SHAPE: [usize; 3] = [5, 4, 3];

fn values() -> Vec<f64> {
    (0..60).map(|v| f64::from(v) * 3.0 - 40.0).collect()
}

/// Encodes `values` as a little-endian dtype.
fn encode(code: i16, values: &[f64]) -> (i16, Vec<u8>) {
    let mut out = Vec::new();
    for &v in values {
        match code {
            2 => out.push(v.rem_euclid(256.0) as u8),
            256 => out.push(v as i8 as u8),
            4 => out.extend((v as i16).to_le_bytes()),
            512 => out.extend((v.abs() as u16).to_le_bytes()),
            8 => out.extend((v as i32).to_le_bytes()),
            16 => out.extend((v as f32).to_le_bytes()),
            64 => out.extend(v.to_le_bytes()),
            _ => unreachable!(),
        }
    }
    let bits = (out.len() / values.len() * 8) as i16;
    (bits, out)
}

fn expected(code: i16, v: f64) -> f64 {
    match code {
        2 => v.rem_euclid(256.0),
        256 => v.clamp(-128.0, 127.0),
        512 => v.abs(),
        _ => v,
    }
}

#[test]
fn every_dtype_reads_with_scaling_applied() {
    let geometry = geometry(SHAPE, RAS);
    for code in [2i16, 256, 4, 512, 8, 16, 64] {
        let (bitpix, data) = encode(code, &values());
        for gz in [false, true] {
            let mut bytes = file(&geometry, code, bitpix, &data);
            set_f32(&mut bytes, offset::SCL_SLOPE, 2.0);
            set_f32(&mut bytes, offset::SCL_INTER, -1024.0);
            let bytes = if gz { gzip(&bytes) } else { bytes };
            let volume = read_ct(&bytes, &ReadLimits::default())
                .unwrap_or_else(|e| panic!("dtype {code}, gz {gz}: {e}"));
            assert_eq!(volume.data.dim(), (3, 4, 5));
            for (got, v) in volume.data.iter().zip(values()) {
                let want = expected(code, v) * 2.0 - 1024.0;
                assert!(
                    (f64::from(*got) - want).abs() < 1e-3,
                    "dtype {code}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn a_zero_slope_means_unscaled() {
    let geometry = geometry(SHAPE, RAS);
    let (bitpix, data) = encode(4, &values());
    let mut bytes = file(&geometry, 4, bitpix, &data);
    set_f32(&mut bytes, offset::SCL_SLOPE, 0.0);
    set_f32(&mut bytes, offset::SCL_INTER, 500.0);
    let volume = read_ct(&bytes, &ReadLimits::default()).unwrap();
    assert_eq!(volume.data[[0, 0, 1]], -37.0);
}

#[test]
fn written_volumes_keep_the_source_geometry_in_every_orientation() {
    for directions in [RAS, LPS, LAS] {
        let geometry = geometry(SHAPE, directions);
        let hu = Array3::from_shape_fn((3, 4, 5), |(k, j, i)| (i + 10 * j + 100 * k) as i16 - 50);
        let source = Volume {
            geometry,
            data: hu.clone(),
        };
        for gz in [false, true] {
            let bytes = write_i16(&source, gz).unwrap();
            let read = read_ct(&bytes, &ReadLimits::default()).unwrap();
            assert_eq!(read.geometry.affine(), source.geometry.affine());
            assert_eq!(read.geometry.shape(), [5, 4, 3]);
            assert_eq!(read.data, hu.mapv(f32::from));
            // Float output of the same volume: same grid again.
            let again = read_ct(&write_f32(&read, gz).unwrap(), &ReadLimits::default()).unwrap();
            assert_eq!(again.geometry.affine(), source.geometry.affine());
            assert_eq!(again.data, read.data);
            let labels = read
                .with_data(hu.mapv(|v| (v.rem_euclid(5)) as u8))
                .unwrap();
            let back =
                read_labels(&write_labels(&labels, gz).unwrap(), &ReadLimits::default()).unwrap();
            assert_eq!(back.data, labels.data);
            assert!(back.geometry.same_grid(&source.geometry));
        }
    }
}

#[test]
fn header_text_fields_are_never_copied() {
    let geometry = geometry(SHAPE, RAS);
    let (bitpix, data) = encode(4, &values());
    let mut bytes = file(&geometry, 4, bitpix, &data);
    bytes[148..148 + 12].copy_from_slice(b"PATIENT NAME");
    bytes[228..228 + 8].copy_from_slice(b"AUX-FILE");
    bytes[328..328 + 6].copy_from_slice(b"INTENT");
    let volume = read_ct(&bytes, &ReadLimits::default()).unwrap();
    let written = write_f32(&volume, false).unwrap();
    let header = &written[..352];
    for needle in [&b"PATIENT"[..], b"AUX-FILE", b"INTENT"] {
        assert!(!header.windows(needle.len()).any(|w| w == needle));
    }
}

#[test]
fn the_same_anatomy_gives_the_same_axial_slices_whatever_the_voxel_order() {
    // One world: a marker at a known RAS position, stored in three voxel orders.
    let mut canonical_slices = Vec::new();
    for directions in [RAS, LPS, LAS] {
        let geometry = geometry(SHAPE, directions);
        let a = geometry.affine();
        let data = Array3::from_shape_fn((3, 4, 5), |(k, j, i)| {
            let world: Vec<f64> = (0..3)
                .map(|w| a[w][0] * i as f64 + a[w][1] * j as f64 + a[w][2] * k as f64)
                .collect();
            // Encode the world position (rounded) so any misplacement shows.
            (world[0].round() * 1000.0 + world[1].round() * 10.0 + world[2].round()) as f32
        });
        let canonical = Canonical::of(&Volume { geometry, data });
        // Columns run from the patient's right to left: RAS x decreases.
        let slice = canonical.axial(0).to_owned();
        assert!(slice[[0, 0]] > slice[[0, 1]]);
        canonical_slices.push(canonical.slice_count());
    }
    assert!(canonical_slices.iter().all(|&n| n == 3));
}
