//! nnU-Net's CT normalization: HU clipped to the dataset's 0.5th and 99.5th percentiles
//! (of foreground voxels), minus the dataset mean, divided by its standard deviation.

use ndarray::{Array2, ArrayView2};

use crate::ImagingError;

/// Dataset statistics for `zscore`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZScore {
    pub lower: f32,
    pub upper: f32,
    pub mean: f32,
    pub std: f32,
}

impl ZScore {
    /// Statistics of a sample of HU values (nnU-Net: the foreground voxels of the
    /// training set). Percentiles by linear interpolation, as numpy's default.
    pub fn from_samples(samples: &[f32]) -> Result<Self, ImagingError> {
        if samples.is_empty() {
            return Err(ImagingError::InvalidParameter(
                "zscore statistics need at least one voxel".into(),
            ));
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f32::total_cmp);
        let percentile = |q: f64| {
            let position = q * (sorted.len() - 1) as f64;
            let below = position.floor() as usize;
            let above = position.ceil() as usize;
            let t = (position - below as f64) as f32;
            sorted[below] * (1.0 - t) + sorted[above] * t
        };
        let n = samples.len() as f64;
        let mean = samples.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let variance = samples
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        Ok(Self {
            lower: percentile(0.005),
            upper: percentile(0.995),
            mean: mean as f32,
            std: variance.sqrt().max(1e-8) as f32,
        })
    }

    /// Statistics of one volume's body voxels (above −500 HU), for a single volume that is
    /// its own dataset (no labels, so no foreground to take them from).
    pub fn of_body<'a>(hu: impl IntoIterator<Item = &'a f32>) -> Result<Self, ImagingError> {
        let body: Vec<f32> = hu.into_iter().copied().filter(|&v| v > -500.0).collect();
        Self::from_samples(&body)
    }

    pub fn validate(&self) -> Result<(), ImagingError> {
        let finite = [self.lower, self.upper, self.mean, self.std]
            .iter()
            .all(|v| v.is_finite());
        if finite && self.lower <= self.upper && self.std > 0.0 {
            Ok(())
        } else {
            Err(ImagingError::InvalidParameter(
                "zscore needs finite statistics, lower ≤ upper and a positive std".into(),
            ))
        }
    }

    pub fn apply(&self, hu: ArrayView2<'_, f32>) -> Array2<f32> {
        hu.mapv(|v| (v.clamp(self.lower, self.upper) - self.mean) / self.std)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_and_normalization() {
        let samples: Vec<f32> = (0..=1000).map(|v| v as f32).collect();
        let z = ZScore::from_samples(&samples).unwrap();
        assert!((z.lower - 5.0).abs() < 1e-3 && (z.upper - 995.0).abs() < 1e-3);
        assert!((z.mean - 500.0).abs() < 1e-3);
        let out = z.apply(ndarray::arr2(&[[-5000.0, 500.0]]).view());
        assert!((out[[0, 1]]).abs() < 1e-6);
        assert!((out[[0, 0]] - (5.0 - 500.0) / z.std).abs() < 1e-4);
        assert!(ZScore::from_samples(&[]).is_err());
    }
}
