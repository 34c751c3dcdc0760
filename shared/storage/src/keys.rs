//! The typed keys of the store: where datasets, volumes, manifests, jobs, checkpoints,
//! models, predictions and reports live. Only this module spells out the layout.

use std::fmt;

use crate::StorageError;

/// A validated identifier: a dataset, case, job, model, prediction or report id.
///
/// 1 to 128 characters of ASCII letters, digits, `.`, `_` and `-`, not starting with `.`,
/// so that an id is always exactly one path segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    /// Checks `value` against the id rules.
    pub fn parse(value: &str) -> Result<Self, StorageError> {
        let invalid = |reason| StorageError::InvalidKey {
            what: "id",
            value: value.chars().take(160).collect(),
            reason,
        };
        if value.is_empty() || value.len() > 128 {
            return Err(invalid("must be 1 to 128 characters"));
        }
        if value.starts_with('.') {
            return Err(invalid("must not start with '.'"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(invalid(
                "may hold only ASCII letters, digits, '.', '_' and '-'",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest segment of a key, in bytes (a file name on every common file system).
const MAX_SEGMENT_BYTES: usize = 255;

/// What a caller's key is for. Callers read inputs only where inputs are kept, and write
/// only where outputs go; datasets, jobs, models and the registry are written only by the
/// services that own them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallerAccess {
    /// A CT volume to read: an uploaded volume or a raw dataset's image.
    ReadVolume,
    /// A label map to read: raw labels, uploaded volumes, predictions, reports' predictions.
    ReadLabels,
    /// A raw dataset to prepare.
    ReadRawDataset,
    /// A label map a caller asks inference to write (create-only), named `.nii` or
    /// `.nii.gz`; the metrics service writes its reports' predictions this way.
    WritePrediction,
    /// Overlay pictures a caller asks for (create-only).
    WriteOverlays,
}

impl CallerAccess {
    /// The top-level prefixes this access may name.
    pub fn prefixes(self) -> &'static [&'static str] {
        match self {
            Self::ReadVolume => &["raw", "volumes"],
            Self::ReadLabels => &["raw", "volumes", "predictions", "reports"],
            Self::ReadRawDataset => &["raw"],
            Self::WritePrediction => &["predictions", "reports"],
            Self::WriteOverlays => &["predictions", "reports"],
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::ReadVolume => "raw/ or volumes/",
            Self::ReadLabels => "raw/, volumes/, predictions/ or reports/",
            Self::ReadRawDataset => "raw/",
            Self::WritePrediction => "predictions/ or reports/, named .nii or .nii.gz",
            Self::WriteOverlays => "predictions/ or reports/",
        }
    }
}

/// A key (or key prefix) in the store, relative to the store's root: `/`-separated
/// segments, none empty, none `.` or `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// Checks a key given by a caller, such as a volume reference in a request.
    pub fn parse(value: &str) -> Result<Self, StorageError> {
        let invalid = |reason| StorageError::InvalidKey {
            what: "key",
            value: value.chars().take(160).collect(),
            reason,
        };
        if value.is_empty() || value.len() > 1024 {
            return Err(invalid("must be 1 to 1024 characters"));
        }
        if value
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(invalid(
                "must be relative, with no empty, '.' or '..' segments",
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(invalid("must not contain control characters"));
        }
        // File systems take at most 255 bytes per name; S3 takes longer ones, but a key
        // must mean the same on every store.
        if value.split('/').any(|s| s.len() > MAX_SEGMENT_BYTES) {
            return Err(invalid("must have no segment over 255 bytes"));
        }
        Ok(Self(value.to_owned()))
    }

    /// Checks a key given by a caller for `access`: well formed, and under one of the
    /// prefixes that access may touch. This is the one place where the store's
    /// namespaces are enforced against requests.
    pub fn parse_for(value: &str, access: CallerAccess) -> Result<Self, StorageError> {
        let key = Self::parse(value)?;
        let top = key.0.split('/').next().unwrap_or_default();
        let named_right = match access {
            CallerAccess::WritePrediction => [".nii", ".nii.gz"].iter().any(|s| key.0.ends_with(s)),
            CallerAccess::ReadVolume
            | CallerAccess::ReadLabels
            | CallerAccess::ReadRawDataset
            | CallerAccess::WriteOverlays => true,
        };
        if access.prefixes().contains(&top) && key.0.len() > top.len() && named_right {
            Ok(key)
        } else {
            Err(StorageError::OutsideNamespace {
                value: value.chars().take(160).collect(),
                allowed: access.describe(),
            })
        }
    }

    fn join(&self, segment: impl fmt::Display) -> Self {
        Self(format!("{}/{segment}", self.0))
    }

    fn root(segment: &str) -> Self {
        Self(segment.to_owned())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment, e.g. a file name.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Whether `self` lies under the prefix `prefix`.
    pub fn starts_with(&self, prefix: &Key) -> bool {
        self.0
            .strip_prefix(&prefix.0)
            .is_some_and(|rest| rest.starts_with('/'))
    }

    pub(crate) fn to_path(&self) -> object_store::path::Path {
        object_store::path::Path::from(self.0.as_str())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A raw dataset in the AbdomenCT-1K layout under any prefix:
/// `images/Case_00001_0000.nii.gz` and `labels/Case_00001.nii.gz`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawDatasetKeys {
    prefix: Key,
}

impl RawDatasetKeys {
    /// A raw dataset at a caller-given prefix.
    pub fn at(prefix: Key) -> Self {
        Self { prefix }
    }

    /// A raw dataset imported by abdoseg under `raw/{name}`.
    pub fn imported(name: &Id) -> Self {
        Self::at(Key::root("raw").join(name))
    }

    pub fn prefix(&self) -> &Key {
        &self.prefix
    }

    pub fn images(&self) -> Key {
        self.prefix.join("images")
    }

    pub fn labels(&self) -> Key {
        self.prefix.join("labels")
    }

    /// The CT of a case: channel 0000, as in AbdomenCT-1K and nnU-Net.
    pub fn image(&self, case: &Id) -> Key {
        self.images().join(format_args!("{case}_0000.nii.gz"))
    }

    pub fn label(&self, case: &Id) -> Key {
        self.labels().join(format_args!("{case}.nii.gz"))
    }
}

/// A single uploaded volume: `volumes/{id}.nii.gz`.
pub fn volume(id: &Id) -> Key {
    Key::root("volumes").join(format_args!("{id}.nii.gz"))
}

/// A prepared (preprocessed, split) dataset under `datasets/{id}/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetKeys {
    prefix: Key,
}

impl DatasetKeys {
    pub fn new(id: &Id) -> Self {
        Self {
            prefix: Self::all().join(id),
        }
    }

    /// The prefix under which every prepared dataset lives.
    pub fn all() -> Key {
        Key::root("datasets")
    }

    pub fn prefix(&self) -> &Key {
        &self.prefix
    }

    /// Written last: a dataset with a manifest is complete.
    pub fn manifest(&self) -> Key {
        self.prefix.join("manifest.json")
    }

    pub fn fingerprint(&self) -> Key {
        self.prefix.join("fingerprint.json")
    }

    /// The preprocessed slices of one case.
    pub fn shard(&self, case: &Id) -> Key {
        self.prefix
            .join("shards")
            .join(format_args!("{case}.slices"))
    }

    /// A finished case's record, written right after its shard: resumption starts here.
    pub fn case_record(&self, case: &Id) -> Key {
        self.prefix.join("cases").join(format_args!("{case}.json"))
    }
}

/// A training job under `jobs/{id}/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobKeys {
    prefix: Key,
}

impl JobKeys {
    pub fn new(id: &Id) -> Self {
        Self {
            prefix: Self::all().join(id),
        }
    }

    pub fn all() -> Key {
        Key::root("jobs")
    }

    pub fn prefix(&self) -> &Key {
        &self.prefix
    }

    /// The job's state and metrics history.
    pub fn state(&self) -> Key {
        self.prefix.join("job.json")
    }

    /// Where the checkpoints live; their names sort by epoch.
    pub fn checkpoints(&self) -> Key {
        self.prefix.join("checkpoints")
    }

    /// The checkpoint written after `epoch` (1-based).
    pub fn checkpoint(&self, epoch: u32) -> CheckpointKeys {
        CheckpointKeys {
            prefix: self.checkpoints().join(format_args!("epoch-{epoch:05}")),
        }
    }
}

/// One checkpoint: model, optimizer and training state (epoch, RNG).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointKeys {
    prefix: Key,
}

impl CheckpointKeys {
    pub fn prefix(&self) -> &Key {
        &self.prefix
    }

    pub fn model(&self) -> Key {
        self.prefix.join("model.mpk")
    }

    pub fn optimizer(&self) -> Key {
        self.prefix.join("optimizer.mpk")
    }

    /// Written last: a checkpoint with a state is complete.
    pub fn state(&self) -> Key {
        self.prefix.join("state.json")
    }
}

/// The preprocessed slices of one volume (`PreprocessVolume`), content-addressed:
/// `preprocessed/{id}.slices`.
pub fn preprocessed_volume(id: &Id) -> Key {
    Key::root("preprocessed").join(format_args!("{id}.slices"))
}

/// A registered model under `models/{id}/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelKeys {
    prefix: Key,
}

impl ModelKeys {
    pub fn new(id: &Id) -> Self {
        Self {
            prefix: Self::all().join(id),
        }
    }

    pub fn all() -> Key {
        Key::root("models")
    }

    pub fn prefix(&self) -> &Key {
        &self.prefix
    }

    /// Config, history and provenance; written after the weights.
    pub fn record(&self) -> Key {
        self.prefix.join("model.json")
    }

    pub fn weights(&self) -> Key {
        self.prefix.join("weights.mpk")
    }
}

/// A label map written by inference: `predictions/{id}.nii.gz`.
pub fn prediction(id: &Id) -> Key {
    Key::root("predictions").join(format_args!("{id}.nii.gz"))
}

/// An evaluation report under `reports/{id}/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportKeys {
    prefix: Key,
}

impl ReportKeys {
    pub fn new(id: &Id) -> Self {
        Self {
            prefix: Self::all().join(id),
        }
    }

    pub fn all() -> Key {
        Key::root("reports")
    }

    pub fn prefix(&self) -> &Key {
        &self.prefix
    }

    pub fn record(&self) -> Key {
        self.prefix.join("report.json")
    }

    pub fn markdown(&self) -> Key {
        self.prefix.join("report.md")
    }

    pub fn html(&self) -> Key {
        self.prefix.join("report.html")
    }

    /// One overlay picture, e.g. `Case_00001-slice-042-liver.png`.
    /// Training curves drawn for the report.
    pub fn loss_curve(&self) -> Key {
        self.prefix.join("loss.svg")
    }

    pub fn iou_curve(&self) -> Key {
        self.prefix.join("iou.svg")
    }

    /// A case's label map as the evaluated model predicted it.
    pub fn prediction(&self, case: &Id) -> Key {
        self.prefix
            .join("predictions")
            .join(format_args!("{case}.nii.gz"))
    }

    pub fn overlay(&self, name: &Id) -> Key {
        self.prefix
            .join("overlays")
            .join(format_args!("{name}.png"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    #[test]
    fn ids_are_single_safe_segments() {
        for good in ["Case_00001", "a", "run-2026.11.26", &"x".repeat(128)] {
            assert!(Id::parse(good).is_ok(), "{good} should be valid");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", "é", &"x".repeat(129)] {
            assert!(Id::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn keys_reject_traversal_and_empty_segments() {
        assert!(Key::parse("raw/set/images/Case_00001_0000.nii.gz").is_ok());
        for bad in ["", "/abs", "a//b", "a/../b", "./a", "a/", "a\nb"] {
            assert!(Key::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn layout_matches_the_documented_one() {
        let raw = RawDatasetKeys::imported(&id("abdomen"));
        assert_eq!(
            raw.image(&id("Case_00001")).as_str(),
            "raw/abdomen/images/Case_00001_0000.nii.gz"
        );
        assert_eq!(
            raw.label(&id("Case_00001")).as_str(),
            "raw/abdomen/labels/Case_00001.nii.gz"
        );
        let ds = DatasetKeys::new(&id("d1"));
        assert_eq!(ds.manifest().as_str(), "datasets/d1/manifest.json");
        assert_eq!(ds.fingerprint().as_str(), "datasets/d1/fingerprint.json");
        assert_eq!(
            ds.case_record(&id("Case_00002")).as_str(),
            "datasets/d1/cases/Case_00002.json"
        );
        assert_eq!(
            preprocessed_volume(&id("p1")).as_str(),
            "preprocessed/p1.slices"
        );
        assert_eq!(
            ds.shard(&id("Case_00002")).as_str(),
            "datasets/d1/shards/Case_00002.slices"
        );
        let job = JobKeys::new(&id("j1"));
        assert_eq!(job.state().as_str(), "jobs/j1/job.json");
        let ckpt = job.checkpoint(7);
        assert_eq!(
            ckpt.model().as_str(),
            "jobs/j1/checkpoints/epoch-00007/model.mpk"
        );
        assert_eq!(
            ckpt.optimizer().as_str(),
            "jobs/j1/checkpoints/epoch-00007/optimizer.mpk"
        );
        assert_eq!(
            ckpt.state().as_str(),
            "jobs/j1/checkpoints/epoch-00007/state.json"
        );
        let model = ModelKeys::new(&id("m1"));
        assert_eq!(model.record().as_str(), "models/m1/model.json");
        assert_eq!(model.weights().as_str(), "models/m1/weights.mpk");
        assert_eq!(volume(&id("v1")).as_str(), "volumes/v1.nii.gz");
        assert_eq!(prediction(&id("p1")).as_str(), "predictions/p1.nii.gz");
        let report = ReportKeys::new(&id("r1"));
        assert_eq!(report.record().as_str(), "reports/r1/report.json");
        assert_eq!(report.markdown().as_str(), "reports/r1/report.md");
        assert_eq!(report.html().as_str(), "reports/r1/report.html");
        assert_eq!(report.loss_curve().as_str(), "reports/r1/loss.svg");
        assert_eq!(
            report.prediction(&id("Case_00002")).as_str(),
            "reports/r1/predictions/Case_00002.nii.gz"
        );
        assert_eq!(
            report.overlay(&id("Case_00001-slice-042-liver")).as_str(),
            "reports/r1/overlays/Case_00001-slice-042-liver.png"
        );
    }

    #[test]
    fn long_segments_are_refused_everywhere() {
        assert!(Key::parse(&format!("predictions/{}", "x".repeat(255))).is_ok());
        assert!(Key::parse(&format!("predictions/{}", "x".repeat(256))).is_err());
    }

    #[test]
    fn callers_reach_only_their_namespaces() {
        use CallerAccess::*;
        let ok = |v: &str, a| Key::parse_for(v, a).is_ok();
        assert!(ok("raw/set/images/Case_00001_0000.nii.gz", ReadVolume));
        assert!(ok("volumes/v.nii.gz", ReadVolume));
        assert!(!ok("models/m/weights.mpk", ReadVolume));
        assert!(!ok("predictions/p.nii.gz", ReadVolume));
        assert!(ok("predictions/p.nii.gz", ReadLabels));
        assert!(ok("reports/r/predictions/c.nii.gz", ReadLabels));
        assert!(!ok("jobs/j/job.json", ReadLabels));
        assert!(ok("raw/set", ReadRawDataset));
        assert!(!ok("datasets/d", ReadRawDataset));
        assert!(ok("predictions/mine.nii.gz", WritePrediction));
        assert!(ok("reports/r/predictions/Case_1.nii.gz", WritePrediction));
        for bad in [
            "models/latest.json",
            "models/m/weights.mpk",
            "jobs/j/job.json",
            "datasets/d/manifest.json",
            "raw/set/images/Case_00001_0000.nii.gz",
            "reports/r/report.json",
            "predictions/p.png",
            "predictions",
            "predictionsx/a.nii.gz",
        ] {
            assert!(
                matches!(
                    Key::parse_for(bad, WritePrediction),
                    Err(StorageError::OutsideNamespace { .. })
                ),
                "{bad}"
            );
        }
        assert!(ok("reports/r/overlays", WriteOverlays));
        assert!(!ok("models/m", WriteOverlays));
    }

    #[test]
    fn checkpoint_keys_sort_by_epoch() {
        let job = JobKeys::new(&id("j"));
        assert!(job.checkpoint(9).prefix() < job.checkpoint(10).prefix());
    }

    #[test]
    fn prefix_test_is_segment_aware() {
        let ds = DatasetKeys::new(&id("d1"));
        assert!(ds.manifest().starts_with(ds.prefix()));
        let other = DatasetKeys::new(&id("d10"));
        assert!(!other.manifest().starts_with(ds.prefix()));
    }
}
