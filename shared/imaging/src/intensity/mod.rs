//! CT intensity: HU windowing to 0–255, then one of the study's schemes (`none`, `he`,
//! `clahe`), or nnU-Net's `zscore` on HU directly.

mod clahe;
mod he;
mod window;
mod zscore;

pub use clahe::{Clahe, clahe_slice};
pub use he::{equalize_histogram, he_slice};
pub use window::HuWindow;
pub use zscore::ZScore;

use ndarray::{Array2, ArrayView2};

use crate::ImagingError;

/// Rounds a value in `[0, 255]` half to even and converts it, as OpenCV's
/// `saturate_cast<uchar>` does. Adding 2^23 leaves a float with a unit of last place of
/// 1, so the addition itself rounds (half to even, the default mode); this avoids a
/// library call per pixel on x86-64 without SSE4.1.
#[inline]
pub(crate) fn round_to_u8(value: f32) -> u8 {
    const SHIFT: f32 = 8_388_608.0;
    ((value.clamp(0.0, 255.0) + SHIFT) - SHIFT) as u8
}

/// Default threshold of the HE variant, in windowed gray levels: see `docs/imaging.md`
/// for the measurement behind it.
pub const DEFAULT_HE_THRESHOLD: u8 = 80;

/// The intensity scheme applied to each axial slice.
#[derive(Debug, Clone, PartialEq)]
pub enum Scheme {
    /// Windowing only.
    None,
    /// Windowed gray levels below `threshold` set to 0, then global histogram equalization.
    He { threshold: u8 },
    /// Contrast-limited adaptive histogram equalization of the windowed slice.
    Clahe(Clahe),
    /// nnU-Net's CT normalization of HU (the window is not used).
    ZScore(ZScore),
}

/// A preprocessed slice: gray levels for the study's schemes, floats for `zscore`.
#[derive(Debug, Clone, PartialEq)]
pub enum Slice {
    Gray(Array2<u8>),
    Float(Array2<f32>),
}

impl Slice {
    /// Model input: gray levels scaled to 0–1, `zscore` values as they are.
    pub fn to_model_input(&self) -> Array2<f32> {
        match self {
            Slice::Gray(gray) => gray.mapv(|v| f32::from(v) / 255.0),
            Slice::Float(values) => values.clone(),
        }
    }
}

/// Window and scheme together: everything that turns HU into model input.
#[derive(Debug, Clone, PartialEq)]
pub struct Intensity {
    pub window: HuWindow,
    pub scheme: Scheme,
}

impl Intensity {
    /// Checks the parameters once, before any slice is processed.
    pub fn validate(&self) -> Result<(), ImagingError> {
        self.window.validate()?;
        match &self.scheme {
            Scheme::None | Scheme::He { .. } => Ok(()),
            Scheme::Clahe(clahe) => clahe.validate(),
            Scheme::ZScore(zscore) => zscore.validate(),
        }
    }

    /// Preprocesses one axial slice of HU values.
    pub fn apply(&self, hu: ArrayView2<'_, f32>) -> Slice {
        match &self.scheme {
            Scheme::None => Slice::Gray(self.window.apply(hu)),
            Scheme::He { threshold } => {
                let mut gray = self.window.apply(hu);
                he_slice(&mut gray, *threshold);
                Slice::Gray(gray)
            }
            Scheme::Clahe(clahe) => Slice::Gray(clahe_slice(&self.window.apply(hu), clahe)),
            Scheme::ZScore(zscore) => Slice::Float(zscore.apply(hu)),
        }
    }
}
