//! 2.5D input: an axial slice with its neighbours above and below as the model's input
//! channels. Neighbours are a fixed distance apart in millimetres, not in slice indices,
//! so a 1 mm scan and a 5 mm scan give the model the same anatomy either side; between
//! source slices the neighbour is interpolated linearly, beyond the volume's ends the end
//! slice repeats.

use ndarray::{Array2, Array3, Axis};
use serde::{Deserialize, Serialize};

/// How many slices make one input and how far apart they are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SliceContext {
    /// Input channels: 1 (2D), or an odd count centred on the slice segmented.
    pub slices: usize,
    /// Distance between neighbouring channels, mm.
    pub step_mm: f32,
}

impl Default for SliceContext {
    fn default() -> Self {
        Self::TWO_D
    }
}

impl SliceContext {
    /// One slice: plain 2D.
    pub const TWO_D: Self = Self {
        slices: 1,
        step_mm: 0.0,
    };
    /// Most channels accepted.
    pub const MAX_SLICES: usize = 9;
    /// Accepted distances between channels, mm.
    pub const STEP_MM: std::ops::RangeInclusive<f32> = 0.5..=20.0;

    pub fn validate(&self) -> Result<(), String> {
        if self.slices == 0 || self.slices.is_multiple_of(2) || self.slices > Self::MAX_SLICES {
            return Err(format!(
                "context slices must be odd, 1 to {}, not {}",
                Self::MAX_SLICES,
                self.slices
            ));
        }
        if self.slices > 1 && !Self::STEP_MM.contains(&self.step_mm) {
            return Err(format!(
                "context step must be {} to {} mm, not {}",
                Self::STEP_MM.start(),
                Self::STEP_MM.end(),
                self.step_mm
            ));
        }
        Ok(())
    }

    /// The model inputs of a volume's slices (`planes`, bottom to top, `spacing_mm`
    /// apart): one `(channels, height, width)` array per slice, the slice itself in the
    /// middle channel. In 2D the planes become the inputs without a copy.
    pub fn stack(
        &self,
        planes: Vec<Array2<f32>>,
        spacing_mm: f32,
    ) -> Result<Vec<Array3<f32>>, String> {
        self.validate()?;
        if self.slices == 1 {
            return Ok(planes.into_iter().map(|p| p.insert_axis(Axis(0))).collect());
        }
        if !(spacing_mm.is_finite() && spacing_mm > 0.0) {
            return Err(format!(
                "slice spacing {spacing_mm} mm cannot place neighbours"
            ));
        }
        let Some(first) = planes.first() else {
            return Ok(Vec::new());
        };
        if planes.iter().any(|p| p.dim() != first.dim()) {
            return Err("slices of one volume differ in size".into());
        }
        let last = (planes.len() - 1) as f32;
        let half = (self.slices / 2) as f32;
        (0..planes.len())
            .map(|z| {
                let channels: Vec<Array2<f32>> = (0..self.slices)
                    .map(|c| {
                        let offset = (c as f32 - half) * self.step_mm / spacing_mm;
                        let position = (z as f32 + offset).clamp(0.0, last);
                        let below = position.floor() as usize;
                        let above = (below + 1).min(planes.len() - 1);
                        let t = position - below as f32;
                        if t < 1e-6 {
                            planes[below].clone()
                        } else {
                            &planes[below] * (1.0 - t) + &planes[above] * t
                        }
                    })
                    .collect();
                let views: Vec<_> = channels.iter().map(|c| c.view()).collect();
                ndarray::stack(Axis(0), &views).map_err(|e| e.to_string())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planes(n: usize) -> Vec<Array2<f32>> {
        (0..n)
            .map(|z| Array2::from_elem((2, 3), z as f32))
            .collect()
    }

    #[test]
    fn two_d_is_the_slice_itself() {
        let stacked = SliceContext::TWO_D.stack(planes(4), 3.0).unwrap();
        assert_eq!(stacked.len(), 4);
        assert_eq!(stacked[2].dim(), (1, 2, 3));
        assert!(stacked[2].iter().all(|&v| v == 2.0));
    }

    #[test]
    fn neighbours_are_millimetres_apart_whatever_the_spacing() {
        let context = SliceContext {
            slices: 3,
            step_mm: 3.0,
        };
        // 1.5 mm slices: neighbours two slices away.
        let fine = context.stack(planes(10), 1.5).unwrap();
        assert_eq!(fine[5].index_axis(Axis(0), 0)[[0, 0]], 3.0);
        assert_eq!(fine[5].index_axis(Axis(0), 1)[[0, 0]], 5.0);
        assert_eq!(fine[5].index_axis(Axis(0), 2)[[0, 0]], 7.0);
        // 2 mm slices: neighbours 1.5 slices away, interpolated.
        let coarse = context.stack(planes(10), 2.0).unwrap();
        assert!((coarse[5].index_axis(Axis(0), 0)[[1, 2]] - 3.5).abs() < 1e-5);
        assert!((coarse[5].index_axis(Axis(0), 2)[[1, 2]] - 6.5).abs() < 1e-5);
        // At the ends the end slice repeats.
        assert_eq!(coarse[0].index_axis(Axis(0), 0)[[0, 0]], 0.0);
        assert_eq!(coarse[9].index_axis(Axis(0), 2)[[0, 0]], 9.0);
    }

    #[test]
    fn bad_settings_are_refused() {
        let even = SliceContext {
            slices: 2,
            step_mm: 3.0,
        };
        assert!(even.validate().is_err());
        let no_step = SliceContext {
            slices: 3,
            step_mm: 0.0,
        };
        assert!(no_step.validate().is_err());
        let three = SliceContext {
            slices: 3,
            step_mm: 3.0,
        };
        assert!(three.stack(planes(3), 0.0).is_err());
        assert!(three.stack(planes(3), f32::NAN).is_err());
    }
}
