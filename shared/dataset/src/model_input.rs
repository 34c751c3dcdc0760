//! [`model_slices`]: the one path from a CT volume to model input, and the [`SliceMap`]
//! that puts labels onto the model's grid and the model's output back onto the volume's.
//! Dataset preparation, `PreprocessVolume` and inference all use it.

use abdoseg_imaging::{
    ImagingError,
    intensity::{Intensity, Slice},
    resample::{FieldOfView, body_centre},
    resize::{resize_bilinear, resize_bilinear_argmax, resize_nearest},
    slices::Canonical,
};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::config::PreprocessConfig;

/// A preprocessed axial slice at model resolution: gray levels for the study's schemes,
/// floats for `zscore` (model input via [`Slice::to_model_input`]).
pub type ModelSlice = Slice;

/// HU of what lies outside the scan: air.
pub const PAD_HU: f32 = -1024.0;

/// How a volume's axial slices sit on the model's grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SliceMap {
    /// Each slice stretched to the model's size (configurations without a pixel size).
    Stretch {
        source: (usize, usize),
        model: (usize, usize),
    },
    /// A fixed pixel size and field of view, centred on the body.
    Physical(FieldOfView),
}

impl SliceMap {
    /// The map `config` gives a canonical CT (in HU).
    pub fn of(ct: &Canonical<f32>, config: &PreprocessConfig) -> Result<Self, ImagingError> {
        let (_, rows, columns) = ct.data.dim();
        let model = (config.slice_height, config.slice_width);
        match config.pixel_size_mm {
            None => Ok(Self::Stretch {
                source: (rows, columns),
                model,
            }),
            Some(mm) => FieldOfView::centred(
                (rows, columns),
                // Canonical rows run along y, columns along x.
                (ct.spacing[1], ct.spacing[0]),
                model,
                mm,
                body_centre(ct.data.view()),
            )
            .map(Self::Physical),
        }
    }

    /// A source label slice on the model's grid (nearest).
    pub fn labels_to_model(&self, labels: ArrayView2<'_, u8>) -> Result<Array2<u8>, ImagingError> {
        match self {
            Self::Stretch { model, .. } => resize_nearest(labels, *model),
            Self::Physical(fov) => fov.labels_to_model(labels),
        }
    }

    /// The label of each source pixel from the model's class planes (logits): bilinear,
    /// then the argmax.
    pub fn argmax_to_source(
        &self,
        planes: &[ArrayView2<'_, f32>],
    ) -> Result<Array2<u8>, ImagingError> {
        match self {
            Self::Stretch { source, .. } => resize_bilinear_argmax(planes, *source),
            Self::Physical(fov) => fov.argmax_to_source(planes),
        }
    }
}

/// Every axial slice of a canonical CT, preprocessed at the model's input, with the map
/// that produced them. With a pixel size the HU slice is resampled first (air beyond the
/// scan) and the scheme applied at model resolution; without one the scheme runs on the
/// source slice, which is then stretched (as datasets made before physical scale were).
pub fn model_slices(
    ct: &Canonical<f32>,
    config: &PreprocessConfig,
    intensity: &Intensity,
) -> Result<(Vec<ModelSlice>, SliceMap), ImagingError> {
    let map = SliceMap::of(ct, config)?;
    let slices = (0..ct.slice_count())
        .into_par_iter()
        .map(|z| match &map {
            SliceMap::Physical(fov) => {
                let hu = fov.image_to_model(ct.axial(z), PAD_HU)?;
                Ok(intensity.apply(hu.view()))
            }
            SliceMap::Stretch { model, .. } => match intensity.apply(ct.axial(z)) {
                Slice::Gray(gray) => {
                    let resized = resize_bilinear(gray.mapv(f32::from).view(), *model)?;
                    Ok(ModelSlice::Gray(
                        resized.mapv(|v| (v.clamp(0.0, 255.0) + 0.5) as u8),
                    ))
                }
                Slice::Float(values) => Ok(Slice::Float(resize_bilinear(values.view(), *model)?)),
            },
        })
        .collect::<Result<_, ImagingError>>()?;
    Ok((slices, map))
}

#[cfg(test)]
mod tests {
    use abdoseg_imaging::{
        Geometry, Volume,
        intensity::{HuWindow, Scheme},
    };
    use ndarray::Array3;

    use super::*;
    use crate::config::PreprocessConfig;

    /// A body of soft tissue (40 HU) with a liver-like block (60 HU) labelled 1, on a
    /// non-square, anisotropic grid.
    fn case(size: [usize; 3], spacing: [f64; 3]) -> (Volume<f32>, Volume<u8>) {
        let mut affine = [[0.0; 4]; 4];
        for (a, s) in spacing.iter().enumerate() {
            affine[a][a] = *s;
        }
        affine[3][3] = 1.0;
        let geometry = Geometry::new(size, affine).unwrap();
        let [nx, ny, nz] = size;
        // Voxel data is stored (k, j, i).
        let ct = Array3::from_shape_fn((nz, ny, nx), |(_, y, x)| {
            let (fx, fy) = (x as f32 / nx as f32 - 0.5, y as f32 / ny as f32 - 0.5);
            if fx.abs() < 0.1 && fy.abs() < 0.15 {
                60.0
            } else if fx * fx + fy * fy < 0.16 {
                40.0
            } else {
                -1000.0
            }
        });
        let labels = ct.mapv(|v| u8::from(v == 60.0));
        (
            Volume {
                geometry: geometry.clone(),
                data: ct,
            },
            Volume {
                geometry,
                data: labels,
            },
        )
    }

    fn config(pixel_size_mm: Option<f32>) -> PreprocessConfig {
        PreprocessConfig {
            pixel_size_mm,
            slice_height: 64,
            slice_width: 64,
            ..PreprocessConfig::default()
        }
    }

    #[test]
    fn physical_scale_keeps_millimetres_whatever_the_grid() {
        // The same anatomy scanned at 0.75 mm and at 3 mm: at a 5 mm pixel both show the
        // labelled block at the same size on the model's grid.
        let intensity = Intensity {
            window: HuWindow::default(),
            scheme: Scheme::None,
        };
        let mut areas = Vec::new();
        for (size, mm) in [([400, 320, 2], 0.75), ([100, 80, 2], 3.0)] {
            let (ct, labels) = case(size, [mm, mm, 2.0]);
            let canonical = Canonical::of(&ct);
            let (slices, map) = model_slices(&canonical, &config(Some(5.0)), &intensity).unwrap();
            assert_eq!(slices.len(), 2);
            let model_labels = map
                .labels_to_model(Canonical::of(&labels).axial(0))
                .unwrap();
            assert_eq!(model_labels.dim(), (64, 64));
            areas.push(model_labels.iter().filter(|&&v| v == 1).count() as f64);
        }
        // 0.2 × 300 mm by 0.3 × 240 mm = 60 × 72 mm = 12 × 14.4 model pixels.
        for area in &areas {
            assert!((area / (12.0 * 14.4) - 1.0).abs() < 0.15, "{areas:?}");
        }
        // Without a pixel size the slice is stretched, as before.
        let (ct, _) = case([100, 80, 2], [3.0, 3.0, 2.0]);
        let (_, map) = model_slices(&Canonical::of(&ct), &config(None), &intensity).unwrap();
        assert!(matches!(map, SliceMap::Stretch { .. }));
    }

    #[test]
    fn a_label_map_through_the_model_grid_comes_back_within_a_voxel() {
        let intensity = Intensity {
            window: HuWindow::default(),
            scheme: Scheme::None,
        };
        // Non-square, anisotropic in-plane (1.5 × 2.5 mm), model pixels 1.25 mm.
        let (ct, labels) = case([90, 70, 3], [1.5, 2.5, 4.0]);
        let canonical = Canonical::of(&ct);
        let canonical_labels = Canonical::of(&labels);
        let mut cfg = config(Some(1.25));
        cfg.slice_height = 160;
        cfg.slice_width = 128;
        let (_, map) = model_slices(&canonical, &cfg, &intensity).unwrap();
        let source = canonical_labels.axial(1).to_owned();
        let model = map.labels_to_model(source.view()).unwrap();
        let planes: Vec<Array2<f32>> = (0..2u8)
            .map(|k| model.mapv(|v| f32::from(u8::from(v == k))))
            .collect();
        let views: Vec<_> = planes.iter().map(|p| p.view()).collect();
        let back = map.argmax_to_source(&views).unwrap();
        assert_eq!(back.dim(), source.dim());
        let (h, w) = source.dim();
        for ((y, x), &v) in source.indexed_iter() {
            if back[[y, x]] != v {
                let near = (y.saturating_sub(1)..=(y + 1).min(h - 1)).any(|yy| {
                    (x.saturating_sub(1)..=(x + 1).min(w - 1)).any(|xx| source[[yy, xx]] != v)
                });
                assert!(near, "({y}, {x}) differs away from a boundary");
            }
        }
        assert!(back.iter().filter(|&&v| v == 1).count() > 100);
    }
}
