//! HU windowing: a window of HU values mapped linearly onto gray levels 0–255.

use ndarray::{Array2, ArrayView2};

use crate::ImagingError;

/// A HU window. The default, level 40 and width 400 (−160 to 240 HU), is the usual
/// abdominal soft-tissue window: it keeps fat, organs, contrast-filled vessels and bone
/// edges apart while air and dense bone saturate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HuWindow {
    pub level: f32,
    pub width: f32,
}

impl Default for HuWindow {
    fn default() -> Self {
        Self {
            level: 40.0,
            width: 400.0,
        }
    }
}

impl HuWindow {
    pub fn validate(&self) -> Result<(), ImagingError> {
        if self.level.is_finite() && self.width.is_finite() && self.width > 0.0 {
            Ok(())
        } else {
            Err(ImagingError::InvalidParameter(format!(
                "window width must be positive and level finite (level {}, width {})",
                self.level, self.width
            )))
        }
    }

    /// The gray level of one HU value, rounded to nearest.
    #[inline]
    pub fn gray(&self, hu: f32) -> u8 {
        let low = self.level - self.width / 2.0;
        let scaled = (hu - low) * (255.0 / self.width);
        // Round half up (values are non-negative here) without a library call per pixel.
        (scaled.clamp(0.0, 255.0) + 0.5) as u8
    }

    /// Windows a slice.
    pub fn apply(&self, hu: ArrayView2<'_, f32>) -> Array2<u8> {
        hu.mapv(|v| self.gray(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_window_onto_0_to_255() {
        let w = HuWindow::default();
        assert_eq!(w.gray(-1000.0), 0);
        assert_eq!(w.gray(-160.0), 0);
        assert_eq!(w.gray(40.0), 128);
        assert_eq!(w.gray(240.0), 255);
        assert_eq!(w.gray(3000.0), 255);
        assert!(
            HuWindow {
                level: 0.0,
                width: 0.0
            }
            .validate()
            .is_err()
        );
    }
}
