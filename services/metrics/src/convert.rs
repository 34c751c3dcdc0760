//! The contract's messages from the service's records.

use abdoseg_dataset::manifest::Split;
use abdoseg_protos::{
    common::v1::{ClassMetrics, ObjectRef, Split as SplitProto},
    metrics::v1 as pb,
};

use crate::{
    Error,
    aggregate::ClassAggregate,
    measures::{CaseEvaluation, ClassEvaluation},
    report::{OverlayRecord, ReportRecord},
    reports,
};

/// The organ enum of a label value (background 0 → ORGAN_BACKGROUND).
pub fn organ(class: u8) -> i32 {
    i32::from(class) + 1
}

pub fn class_metrics(c: &ClassEvaluation) -> ClassMetrics {
    ClassMetrics {
        organ: organ(c.class),
        iou: c.iou.unwrap_or(f64::NAN),
        dice: c.dice.unwrap_or(f64::NAN),
        true_positives: c.true_positives,
        false_positives: c.false_positives,
        false_negatives: c.false_negatives,
        precision: c.precision.unwrap_or(f64::NAN),
        recall: c.recall.unwrap_or(f64::NAN),
        volume_difference_ml: c.volume_difference_ml,
        hd95_mm: c.hd95_mm,
        nsd: c.nsd,
    }
}

pub fn case_metrics(case_id: &str, evaluation: &CaseEvaluation) -> pb::CaseMetrics {
    pb::CaseMetrics {
        case_id: case_id.to_owned(),
        classes: evaluation.classes.iter().map(class_metrics).collect(),
    }
}

fn aggregate(a: &ClassAggregate) -> pb::AggregateMetrics {
    pb::AggregateMetrics {
        organ: organ(a.class),
        mean_iou: a.mean_iou.unwrap_or(f64::NAN),
        median_iou: a.median_iou.unwrap_or(f64::NAN),
        mean_dice: a.mean_dice.unwrap_or(f64::NAN),
        median_dice: a.median_dice.unwrap_or(f64::NAN),
        pooled_iou: a.pooled_iou.unwrap_or(f64::NAN),
        mean_hd95_mm: a.mean_hd95_mm,
        mean_nsd: a.mean_nsd,
    }
}

pub fn overlay(o: &OverlayRecord) -> pb::Overlay {
    pb::Overlay {
        slice: o.slice,
        organ: organ(o.class),
        png: Some(ObjectRef {
            key: o.key.clone(),
            ..ObjectRef::default()
        }),
        selection: o.selection.clone(),
    }
}

pub fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Validation => "validation",
        Split::Test => "test",
    }
}

pub fn split_from_proto(split: i32) -> Result<Split, Error> {
    match SplitProto::try_from(split) {
        Ok(SplitProto::Train) => Ok(Split::Train),
        Ok(SplitProto::Validation) => Ok(Split::Validation),
        Ok(SplitProto::Test) => Ok(Split::Test),
        Ok(SplitProto::Unspecified) => Err(Error::InvalidArgument("split is required".into())),
        Err(_) => Err(Error::InvalidArgument(format!("unknown split {split}"))),
    }
}

fn split_to_proto(name: &str) -> i32 {
    match name {
        "train" => SplitProto::Train,
        "validation" => SplitProto::Validation,
        "test" => SplitProto::Test,
        _ => SplitProto::Unspecified,
    }
    .into()
}

/// A report message, its renderings' keys derived from its id; `with_cases` leaves
/// per-case metrics out for listings.
pub fn report(r: &ReportRecord, with_cases: bool) -> Result<pb::Report, Error> {
    let keys = reports::keys(&r.report_id)?;
    let object = |key: abdoseg_storage::Key| {
        Some(ObjectRef {
            key: key.to_string(),
            ..ObjectRef::default()
        })
    };
    Ok(pb::Report {
        report_id: r.report_id.clone(),
        model_id: r.model_id.clone(),
        dataset_id: r.dataset_id.clone(),
        split: split_to_proto(&r.split),
        cases: if with_cases {
            r.cases
                .iter()
                .map(|c| case_metrics(&c.case_id, &c.evaluation))
                .collect()
        } else {
            Vec::new()
        },
        aggregate: r.aggregate.iter().map(aggregate).collect(),
        markdown: object(keys.markdown()),
        html: object(keys.html()),
        overlays: r.overlays.iter().map(overlay).collect(),
        created_at: Some(prost_types::Timestamp {
            seconds: (r.created_at / 1000) as i64,
            nanos: ((r.created_at % 1000) * 1_000_000) as i32,
        }),
    })
}
