//! The metrics service's Prometheus metrics: evaluations, cases and per-organ IoU.

use std::time::Duration;

use abdoseg_imaging::CLASS_NAMES;
use abdoseg_server::prometheus::Metrics;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
};

use crate::measures::CaseEvaluation;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OrganLabel {
    organ: &'static str,
}

fn outcome(ok: bool) -> Outcome {
    Outcome {
        outcome: if ok { "ok" } else { "failed" },
    }
}

fn seconds_histogram() -> Histogram {
    Histogram::new([
        0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0, 7200.0,
    ])
}

fn iou_histogram() -> Histogram {
    Histogram::new((1..=10).map(|i| f64::from(i) / 10.0))
}

/// Handles to the service's metrics; clones share them.
#[derive(Debug, Clone)]
pub struct Telemetry {
    predictions: Family<Outcome, Counter>,
    prediction_seconds: Histogram,
    evaluations: Family<Outcome, Counter>,
    evaluation_seconds: Histogram,
    cases: Family<Outcome, Counter>,
    case_iou: Family<OrganLabel, Histogram, fn() -> Histogram>,
}

impl Telemetry {
    /// Metrics registered in `metrics` (as `abdoseg_…`).
    pub fn register(metrics: &Metrics) -> Self {
        let telemetry = Self::unregistered();
        metrics.register(|r| {
            r.register(
                "prediction_evaluations",
                "EvaluatePrediction calls by outcome",
                telemetry.predictions.clone(),
            );
            r.register(
                "prediction_evaluation_seconds",
                "Time to compute one case's metrics",
                telemetry.prediction_seconds.clone(),
            );
            r.register(
                "model_evaluations",
                "EvaluateModel runs finished, by outcome",
                telemetry.evaluations.clone(),
            );
            r.register(
                "model_evaluation_seconds",
                "Duration of EvaluateModel runs",
                telemetry.evaluation_seconds.clone(),
            );
            r.register(
                "evaluated_cases",
                "Cases of model evaluations, by outcome",
                telemetry.cases.clone(),
            );
            r.register(
                "case_iou",
                "Per-case IoU of each organ in model evaluations (where defined)",
                telemetry.case_iou.clone(),
            );
        });
        telemetry
    }

    /// Metrics that nothing exports (tests, library use).
    pub fn unregistered() -> Self {
        Self {
            predictions: Family::default(),
            prediction_seconds: seconds_histogram(),
            evaluations: Family::default(),
            evaluation_seconds: seconds_histogram(),
            cases: Family::default(),
            case_iou: Family::new_with_constructor(iou_histogram),
        }
    }

    pub fn prediction_evaluated(&self, ok: bool, elapsed: Duration) {
        self.predictions.get_or_create(&outcome(ok)).inc();
        if ok {
            self.prediction_seconds.observe(elapsed.as_secs_f64());
        }
    }

    pub fn evaluation_finished(&self, ok: bool, elapsed: Duration) {
        self.evaluations.get_or_create(&outcome(ok)).inc();
        self.evaluation_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn case_evaluated(&self, case: &CaseEvaluation) {
        self.cases.get_or_create(&outcome(true)).inc();
        for class in case.classes.iter().filter(|c| c.class != 0) {
            if let Some(iou) = class.iou {
                self.case_iou
                    .get_or_create(&OrganLabel {
                        organ: CLASS_NAMES[usize::from(class.class)],
                    })
                    .observe(iou);
            }
        }
    }

    pub fn case_failed(&self) {
        self.cases.get_or_create(&outcome(false)).inc();
    }
}
