//! The manifest of a prepared dataset and the per-case records it is built from.
//!
//! A case record (`datasets/{id}/cases/{case}.json`) is written right after the case's
//! shard, so a crashed run resumes from finished cases; the manifest is written last.

use abdoseg_imaging::NUM_CLASSES;
use serde::{Deserialize, Serialize};

use crate::config::PreprocessConfig;

/// Part of a patient-level split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Validation,
    Test,
}

/// Fractions of patients per split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    pub train: f64,
    pub validation: f64,
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        Self {
            train: 0.6,
            validation: 0.2,
            test: 0.2,
        }
    }
}

impl SplitFractions {
    pub fn validate(&self) -> Result<(), String> {
        let parts = [self.train, self.validation, self.test];
        if parts.iter().any(|f| !(0.0..=1.0).contains(f))
            || (parts.iter().sum::<f64>() - 1.0).abs() > 1e-6
        {
            return Err(format!(
                "split fractions must each be 0 to 1 and sum to 1, not {}/{}/{}",
                self.train, self.validation, self.test
            ));
        }
        Ok(())
    }
}

/// A source object as it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceObject {
    pub key: String,
    pub etag: Option<String>,
    pub size: u64,
}

/// HU histogram of one class: sparse `(bin, count)` pairs, bin = HU + 1024 clamped to
/// 0..4096.
pub type SparseHistogram = Vec<(u16, u64)>;

/// One finished case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    pub case_id: String,
    pub split: Split,
    pub shard_key: String,
    pub shard_sha256: String,
    pub shard_bytes: u64,
    /// Voxels of each class (background first) in each axial slice, at model resolution.
    pub slices: Vec<[u64; NUM_CLASSES]>,
    /// Source grid: voxels along i, j, k; spacing in mm; orientation code.
    pub shape: [usize; 3],
    pub spacing: [f32; 3],
    pub orientation: String,
    pub source_image: SourceObject,
    pub source_label: SourceObject,
    /// Per-class HU histograms for the fingerprint; dropped from the manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hu_histograms: Vec<SparseHistogram>,
}

impl CaseRecord {
    /// Distance between axial slices, mm: the spacing of the source axis that runs
    /// superior–inferior (its orientation letter S or I); `None` when the record's
    /// orientation names none.
    pub fn axial_spacing_mm(&self) -> Option<f32> {
        let axis = self
            .orientation
            .chars()
            .position(|c| matches!(c, 'S' | 'I'))?;
        self.spacing.get(axis).copied()
    }
}

/// A case that could not be prepared, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCase {
    pub case_id: String,
    pub reason: String,
}

/// Intensity statistics of one class over the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntensityStatistics {
    pub class: u8,
    pub voxels: u64,
    pub mean: f64,
    pub std: f64,
    pub percentile_00_5: f64,
    pub percentile_99_5: f64,
}

/// Spacings, shapes and intensities of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Fingerprint {
    pub median_spacing: [f32; 3],
    pub median_shape: [usize; 3],
    pub intensities: Vec<IntensityStatistics>,
    /// nnU-Net's normalization from the training split's foreground voxels:
    /// `[p0.5, p99.5, mean, std]`.
    pub zscore: Option<[f32; 4]>,
}

/// The manifest: everything a trainer needs to know about a prepared dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub dataset_id: String,
    pub format_version: u32,
    pub abdoseg_version: String,
    pub source_prefix: String,
    pub layout: String,
    pub preprocessing: PreprocessConfig,
    pub seed: u64,
    pub split: SplitFractions,
    pub cases: Vec<CaseRecord>,
    pub failed: Vec<FailedCase>,
    pub fingerprint: Fingerprint,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

impl Manifest {
    /// Cases of one split.
    pub fn cases_in(&self, split: Split) -> impl Iterator<Item = &CaseRecord> {
        self.cases.iter().filter(move |c| c.split == split)
    }

    pub fn slice_count(&self) -> usize {
        self.cases.iter().map(|c| c.slices.len()).sum()
    }
}

const BINS: usize = 4096;
const OFFSET: f64 = 1024.0;

/// Dense HU histograms per class, merged from case records.
#[derive(Debug, Clone)]
pub struct HuHistograms(pub Vec<Vec<u64>>);

impl HuHistograms {
    pub fn new() -> Self {
        Self(vec![vec![0; BINS]; NUM_CLASSES])
    }

    #[inline]
    pub fn add(&mut self, hu: f32, class: u8) {
        let bin = (f64::from(hu) + OFFSET)
            .round()
            .clamp(0.0, (BINS - 1) as f64) as usize;
        if let Some(h) = self.0.get_mut(usize::from(class)) {
            h[bin] += 1;
        }
    }

    pub fn to_sparse(&self) -> Vec<SparseHistogram> {
        self.0
            .iter()
            .map(|h| {
                h.iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(b, &c)| (b as u16, c))
                    .collect()
            })
            .collect()
    }

    pub fn merge_sparse(&mut self, sparse: &[SparseHistogram]) {
        for (dense, pairs) in self.0.iter_mut().zip(sparse) {
            for &(bin, count) in pairs {
                if let Some(slot) = dense.get_mut(usize::from(bin)) {
                    *slot += count;
                }
            }
        }
    }

    /// Statistics of a histogram (HU bins of 1).
    pub fn statistics(histogram: &[u64], class: u8) -> IntensityStatistics {
        let voxels: u64 = histogram.iter().sum();
        let value = |bin: usize| bin as f64 - OFFSET;
        let mean = if voxels == 0 {
            0.0
        } else {
            histogram
                .iter()
                .enumerate()
                .map(|(b, &c)| value(b) * c as f64)
                .sum::<f64>()
                / voxels as f64
        };
        let variance = if voxels == 0 {
            0.0
        } else {
            histogram
                .iter()
                .enumerate()
                .map(|(b, &c)| (value(b) - mean).powi(2) * c as f64)
                .sum::<f64>()
                / voxels as f64
        };
        let percentile = |q: f64| {
            let target = (q * voxels as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (b, &c) in histogram.iter().enumerate() {
                seen += c;
                if seen >= target {
                    return value(b);
                }
            }
            0.0
        };
        IntensityStatistics {
            class,
            voxels,
            mean,
            std: variance.sqrt(),
            percentile_00_5: percentile(0.005),
            percentile_99_5: percentile(0.995),
        }
    }

    /// nnU-Net's normalization `[p0.5, p99.5, mean, std]` of the foreground voxels; `None`
    /// without any.
    pub fn zscore(&self) -> Option<[f32; 4]> {
        let fg = self.foreground();
        (fg.voxels > 0).then(|| {
            [
                fg.percentile_00_5 as f32,
                fg.percentile_99_5 as f32,
                fg.mean as f32,
                fg.std.max(1e-3) as f32,
            ]
        })
    }

    /// Statistics of all foreground classes together.
    pub fn foreground(&self) -> IntensityStatistics {
        let mut merged = vec![0u64; BINS];
        for h in self.0.iter().skip(1) {
            for (m, c) in merged.iter_mut().zip(h) {
                *m += c;
            }
        }
        Self::statistics(&merged, 255)
    }
}

impl Default for HuHistograms {
    fn default() -> Self {
        Self::new()
    }
}

/// The fingerprint of finished cases; `zscore` from the training split's foreground.
pub fn fingerprint(cases: &[CaseRecord]) -> Fingerprint {
    let median = |mut values: Vec<f64>| -> f64 {
        if values.is_empty() {
            return 0.0;
        }
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let axis = |f: &dyn Fn(&CaseRecord) -> f64| median(cases.iter().map(f).collect());
    let median_spacing = [0, 1, 2].map(|a| axis(&|c| f64::from(c.spacing[a])) as f32);
    let median_shape = [0, 1, 2].map(|a| axis(&|c| c.shape[a] as f64) as usize);
    let mut all = HuHistograms::new();
    let mut train = HuHistograms::new();
    for case in cases {
        all.merge_sparse(&case.hu_histograms);
        if case.split == Split::Train {
            train.merge_sparse(&case.hu_histograms);
        }
    }
    let intensities = all
        .0
        .iter()
        .enumerate()
        .map(|(class, h)| HuHistograms::statistics(h, class as u8))
        .collect();
    let zscore = train.zscore();
    Fingerprint {
        median_spacing,
        median_shape,
        intensities,
        zscore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(spacing: [f32; 3], orientation: &str) -> CaseRecord {
        let source = SourceObject {
            key: "raw/x/images/Case_00001_0000.nii.gz".into(),
            etag: None,
            size: 1,
        };
        CaseRecord {
            case_id: "Case_00001".into(),
            split: Split::Train,
            shard_key: String::new(),
            shard_sha256: String::new(),
            shard_bytes: 0,
            slices: Vec::new(),
            shape: [4, 4, 4],
            spacing,
            orientation: orientation.into(),
            source_image: source.clone(),
            source_label: source,
            hu_histograms: Vec::new(),
        }
    }

    #[test]
    fn the_axial_spacing_is_the_superior_inferior_axis_s() {
        assert_eq!(case([0.7, 0.7, 2.5], "RAS").axial_spacing_mm(), Some(2.5));
        assert_eq!(case([0.7, 0.7, 2.5], "LPI").axial_spacing_mm(), Some(2.5));
        // Files stored with slices along the first axis.
        assert_eq!(case([5.0, 0.8, 0.8], "SLP").axial_spacing_mm(), Some(5.0));
        assert_eq!(case([1.0, 1.0, 1.0], "").axial_spacing_mm(), None);
    }
}
