//! A stored evaluation: what was evaluated, every case's metrics, the split's aggregates,
//! the overlays and the model's training history, rendered as Markdown and as one
//! self-contained HTML page.

mod curves;
mod html;
mod markdown;

use abdoseg_imaging::CLASS_NAMES;
use abdoseg_model::train::EpochReport;
use serde::{Deserialize, Serialize};

use crate::aggregate::ClassAggregate;
use crate::measures::{CaseEvaluation, NSD_TOLERANCE_MM};

pub use curves::{epoch_chart, iou_curves, loss_curves};
pub use html::html;
pub use markdown::{STUDY_BEST, markdown};

/// One evaluated case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    pub case_id: String,
    pub evaluation: CaseEvaluation,
}

/// A case that could not be evaluated, and why (no patient data in the reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCase {
    pub case_id: String,
    pub reason: String,
}

/// A rendered overlay stored beside the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayRecord {
    pub case_id: String,
    /// Axial slice on the canonical grid (0 = most inferior).
    pub slice: u32,
    /// 0 for the study's 2×3 grid of all organs, else the organ's label value.
    pub class: u8,
    /// "best" or "worst" (per organ), or empty when requested.
    pub selection: String,
    /// Store key of the PNG.
    pub key: String,
}

impl OverlayRecord {
    /// A file name relative to the report's folder.
    pub fn relative_path(&self) -> &str {
        self.key
            .rsplit_once("/overlays/")
            .map_or(&self.key, |(_, name)| name)
    }

    pub fn caption(&self) -> String {
        let what = if self.class == 0 {
            "all organs"
        } else {
            CLASS_NAMES[usize::from(self.class)]
        };
        let why = if self.selection.is_empty() {
            String::new()
        } else {
            format!(", {} slice", self.selection)
        };
        format!("{} slice {} — {what}{why}", self.case_id, self.slice)
    }
}

/// `reports/{id}/report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportRecord {
    pub report_id: String,
    pub model_id: String,
    pub dataset_id: String,
    /// "train", "validation" or "test".
    pub split: String,
    pub surface_metrics: bool,
    /// Unix milliseconds.
    pub created_at: u64,
    pub cases: Vec<CaseResult>,
    pub failed: Vec<FailedCase>,
    pub aggregate: Vec<ClassAggregate>,
    pub overlays: Vec<OverlayRecord>,
    /// The model's training history, for the curves.
    pub history: Vec<EpochReport>,
    pub best_epoch: usize,
}

/// Column headings of the study's table, background first.
pub const TABLE_HEADINGS: [&str; 5] = ["Background", "Liver", "Kidneys", "Spleen", "Pancreas"];

/// A metric value for a table cell: `—` where undefined.
pub fn cell(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.digits$}"))
}

/// The rows of the split tables: a heading and one cell per class.
pub fn aggregate_rows(report: &ReportRecord) -> Vec<(String, Vec<String>)> {
    let row = |name: &str, f: &dyn Fn(&ClassAggregate) -> String| {
        (
            name.to_owned(),
            report.aggregate.iter().map(f).collect::<Vec<_>>(),
        )
    };
    let mut rows = vec![
        row("Mean IoU", &|a| cell(a.mean_iou, 4)),
        row("Median IoU", &|a| cell(a.median_iou, 4)),
        row("Mean Dice", &|a| cell(a.mean_dice, 4)),
        row("Median Dice", &|a| cell(a.median_dice, 4)),
        row("Pooled Dice", &|a| cell(a.pooled_dice, 4)),
        row("Cases with the class", &|a| a.cases_with_class.to_string()),
    ];
    if report.surface_metrics {
        rows.push(row("Mean HD95 (mm)", &|a| cell(a.mean_hd95_mm, 2)));
        rows.push(row("Median HD95 (mm)", &|a| cell(a.median_hd95_mm, 2)));
        rows.push(row("Cases with HD95 undefined (one side empty)", &|a| {
            if a.class == 0 {
                "—".into()
            } else {
                a.cases_one_sided.to_string()
            }
        }));
        rows.push(row("Mean NSD", &|a| cell(a.mean_nsd, 4)));
        rows.push(row("NSD tolerance (mm)", &|a| {
            cell(NSD_TOLERANCE_MM[usize::from(a.class)], 0)
        }));
    }
    rows
}

#[cfg(test)]
pub(crate) mod sample {
    use abdoseg_model::train::Overlap;

    use super::*;
    use crate::aggregate::aggregate;
    use crate::measures::ClassEvaluation;

    /// A small report with two cases and two epochs of history.
    pub fn report() -> ReportRecord {
        let case = |case_id: &str, liver_tp: u64| {
            let mut confusion = [[0u64; 5]; 5];
            confusion[0][0] = 500;
            confusion[1][1] = liver_tp;
            confusion[1][0] = 10;
            let classes = (0..5u8)
                .map(|class| ClassEvaluation {
                    class,
                    true_positives: confusion[usize::from(class)][usize::from(class)],
                    false_positives: 0,
                    false_negatives: 0,
                    iou: (class < 2).then_some(0.5 + f64::from(class) / 10.0),
                    dice: (class < 2).then_some(0.7),
                    precision: None,
                    recall: None,
                    volume_difference_ml: 0.0,
                    hd95_mm: (class == 1).then_some(4.25),
                    nsd: (class == 1).then_some(0.875),
                })
                .collect();
            CaseResult {
                case_id: case_id.into(),
                evaluation: CaseEvaluation { classes, confusion },
            }
        };
        let cases = vec![case("Case_00007", 90), case("Case_00011", 40)];
        let aggregate = aggregate(
            &cases
                .iter()
                .map(|c| c.evaluation.clone())
                .collect::<Vec<_>>(),
        );
        let epoch = |epoch: usize, loss: f64| EpochReport {
            epoch,
            train_loss: loss,
            validation_loss: loss + 0.1,
            train: Overlap::default(),
            validation: Overlap::default(),
            seconds: 1.0,
            real_validation: None,
        };
        ReportRecord {
            report_id: "report-1".into(),
            model_id: "model-<b>".into(),
            dataset_id: "phantoms".into(),
            split: "test".into(),
            surface_metrics: true,
            created_at: 1_700_000_000_000,
            cases,
            failed: vec![FailedCase {
                case_id: "Case_00013".into(),
                reason: "inference refused: busy".into(),
            }],
            aggregate,
            overlays: vec![OverlayRecord {
                case_id: "Case_00007".into(),
                slice: 12,
                class: 0,
                selection: String::new(),
                key: "reports/report-1/overlays/Case_00007-slice-012-grid.png".into(),
            }],
            history: vec![epoch(1, 1.5), epoch(2, 0.75)],
            best_epoch: 2,
        }
    }
}
