//! The preprocessing a dataset (and every model trained on it) records: window, scheme
//! and slice size, so that inference reproduces training exactly.

use abdoseg_imaging::intensity::{
    Clahe, DEFAULT_HE_THRESHOLD, HuWindow, Intensity, Scheme as ImagingScheme, ZScore,
};
use serde::{Deserialize, Serialize};

use crate::manifest::Fingerprint;

/// The intensity scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Scheme {
    None,
    He {
        threshold: u8,
    },
    Clahe {
        tiles: usize,
        clip_limit: f32,
    },
    /// Statistics come from the dataset's fingerprint (training split, foreground voxels).
    Zscore,
}

impl Scheme {
    pub fn he_default() -> Self {
        Self::He {
            threshold: DEFAULT_HE_THRESHOLD,
        }
    }
}

/// The smallest and largest model pixel sizes accepted, mm.
pub const MIN_PIXEL_MM: f32 = 0.25;
pub const MAX_PIXEL_MM: f32 = 10.0;

/// Everything that turns a CT volume into model input slices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessConfig {
    pub window_level: f32,
    pub window_width: f32,
    pub scheme: Scheme,
    /// Model input size in pixels: height (rows) and width (columns).
    pub slice_height: usize,
    pub slice_width: usize,
    /// The model's in-plane pixel size in mm: slices are resampled to it and padded or
    /// cropped to `slice_height × slice_width` pixels centred on the body (the field of
    /// view). `None` stretches each slice to the model's size whatever its spacing (datasets
    /// and models made before physical scale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_size_mm: Option<f32>,
}

impl PreprocessConfig {
    pub fn window(&self) -> HuWindow {
        HuWindow {
            level: self.window_level,
            width: self.window_width,
        }
    }

    /// Checks every parameter; the message says which one is wrong.
    pub fn validate(&self) -> Result<(), String> {
        self.window().validate().map_err(|e| e.to_string())?;
        if !(8..=2048).contains(&self.slice_height) || !(8..=2048).contains(&self.slice_width) {
            return Err(format!(
                "slice size must be 8 to 2048 pixels per side, not {}×{}",
                self.slice_height, self.slice_width
            ));
        }
        if let Some(mm) = self.pixel_size_mm
            && !(MIN_PIXEL_MM..=MAX_PIXEL_MM).contains(&mm)
        {
            return Err(format!(
                "pixel size must be {MIN_PIXEL_MM} to {MAX_PIXEL_MM} mm, not {mm}"
            ));
        }
        if let Scheme::Clahe { tiles, clip_limit } = self.scheme {
            Clahe { tiles, clip_limit }
                .validate()
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The physical field of view in mm (rows, columns), when slices have a pixel size.
    pub fn field_of_view_mm(&self) -> Option<(f32, f32)> {
        self.pixel_size_mm
            .map(|mm| (self.slice_height as f32 * mm, self.slice_width as f32 * mm))
    }

    /// The imaging pipeline; `zscore` needs the dataset's fingerprint.
    pub fn intensity(&self, fingerprint: Option<&Fingerprint>) -> Result<Intensity, String> {
        let scheme = match &self.scheme {
            Scheme::None => ImagingScheme::None,
            Scheme::He { threshold } => ImagingScheme::He {
                threshold: *threshold,
            },
            Scheme::Clahe { tiles, clip_limit } => ImagingScheme::Clahe(Clahe {
                tiles: *tiles,
                clip_limit: *clip_limit,
            }),
            Scheme::Zscore => {
                let stats = fingerprint
                    .and_then(|f| f.zscore)
                    .ok_or("zscore needs the dataset's foreground statistics")?;
                ImagingScheme::ZScore(ZScore {
                    lower: stats[0],
                    upper: stats[1],
                    mean: stats[2],
                    std: stats[3],
                })
            }
        };
        let intensity = Intensity {
            window: self.window(),
            scheme,
        };
        intensity.validate().map_err(|e| e.to_string())?;
        Ok(intensity)
    }
}

impl Default for PreprocessConfig {
    /// The study's best scheme (the HE variant) at 128×128, sized for CPUs.
    fn default() -> Self {
        let window = HuWindow::default();
        Self {
            window_level: window.level,
            window_width: window.width,
            scheme: Scheme::he_default(),
            slice_height: 128,
            slice_width: 128,
            pixel_size_mm: None,
        }
    }
}
