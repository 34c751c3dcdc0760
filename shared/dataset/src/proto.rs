//! Conversions between the contract's preprocessing message and [`PreprocessConfig`],
//! shared by every service that records or reproduces preprocessing.

use abdoseg_imaging::{
    Geometry,
    intensity::{Clahe, DEFAULT_HE_THRESHOLD},
    orientation::axis_codes,
};
use abdoseg_protos::common::v1::{
    self as common, ClaheParameters, HeParameters, HuWindow, IntensityScheme, VolumeGeometry,
};

use crate::config::{PreprocessConfig, Scheme};

/// The request's preprocessing, with defaults for what it leaves out.
pub fn preprocessing_from_proto(
    config: Option<common::PreprocessingConfig>,
) -> Result<PreprocessConfig, String> {
    let defaults = PreprocessConfig::default();
    let Some(config) = config else {
        return Ok(defaults);
    };
    let scheme = match IntensityScheme::try_from(config.scheme) {
        Ok(IntensityScheme::Unspecified | IntensityScheme::He) => Scheme::He {
            threshold: match config.he {
                Some(he) => u8::try_from(he.threshold)
                    .map_err(|_| format!("HE threshold {} is not 0–255", he.threshold))?,
                None => DEFAULT_HE_THRESHOLD,
            },
        },
        Ok(IntensityScheme::None) => Scheme::None,
        Ok(IntensityScheme::Clahe) => {
            let clahe = config.clahe.unwrap_or(ClaheParameters {
                tiles: Clahe::default().tiles as u32,
                clip_limit: Clahe::default().clip_limit,
            });
            Scheme::Clahe {
                tiles: clahe.tiles as usize,
                clip_limit: clahe.clip_limit,
            }
        }
        Ok(IntensityScheme::Zscore) => Scheme::Zscore,
        Err(_) => {
            return Err(format!(
                "unknown intensity scheme {}; use NONE, HE, CLAHE or ZSCORE",
                config.scheme
            ));
        }
    };
    if !config.target_spacing_mm.is_finite() || config.target_spacing_mm < 0.0 {
        return Err(format!(
            "target_spacing_mm must be 0 (stretch) or a pixel size in mm, not {}",
            config.target_spacing_mm
        ));
    }
    let window = config.window.unwrap_or(HuWindow {
        level: defaults.window_level,
        width: defaults.window_width,
    });
    let size = |v: u32, default: usize| if v == 0 { default } else { v as usize };
    let result = PreprocessConfig {
        window_level: window.level,
        window_width: window.width,
        scheme,
        slice_height: size(config.slice_height, defaults.slice_height),
        slice_width: size(config.slice_width, defaults.slice_width),
        pixel_size_mm: (config.target_spacing_mm > 0.0).then_some(config.target_spacing_mm),
    };
    result.validate()?;
    Ok(result)
}

pub fn preprocessing_to_proto(config: &PreprocessConfig) -> common::PreprocessingConfig {
    let (scheme, he, clahe) = match &config.scheme {
        Scheme::None => (IntensityScheme::None, None, None),
        Scheme::He { threshold } => (
            IntensityScheme::He,
            Some(HeParameters {
                threshold: u32::from(*threshold),
            }),
            None,
        ),
        Scheme::Clahe { tiles, clip_limit } => (
            IntensityScheme::Clahe,
            None,
            Some(ClaheParameters {
                tiles: *tiles as u32,
                clip_limit: *clip_limit,
            }),
        ),
        Scheme::Zscore => (IntensityScheme::Zscore, None, None),
    };
    common::PreprocessingConfig {
        scheme: scheme as i32,
        window: Some(HuWindow {
            level: config.window_level,
            width: config.window_width,
        }),
        he,
        clahe,
        slice_width: config.slice_width as u32,
        slice_height: config.slice_height as u32,
        target_spacing_mm: config.pixel_size_mm.unwrap_or(0.0),
    }
}

/// A volume's grid as the contract states it.
pub fn geometry_to_proto(geometry: &Geometry) -> VolumeGeometry {
    VolumeGeometry {
        shape: geometry.shape().iter().map(|&v| v as u32).collect(),
        spacing_mm: geometry.spacing().to_vec(),
        affine: geometry.affine().iter().flatten().copied().collect(),
        orientation: axis_codes(&geometry.affine()),
    }
}
