//! EvaluateModel: every case of a split through the inference service over gRPC (a
//! bounded number at once), each prediction measured against its label map as it
//! arrives, then the split's aggregates, the overlays and the stored report.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use abdoseg_dataset::{
    labels::{NNUNET_LAYOUT, remap_from_dataset_json},
    manifest::{CaseRecord, Manifest, Split},
};
use abdoseg_protos::{
    common::v1::ObjectRef,
    inference::v1::SegmentRequest,
    metrics::v1::{CaseEvaluationFailed, EvaluateModelResponse, evaluate_model_response::Event},
};
use abdoseg_registry::ModelRecord;
use abdoseg_server::MemoryBudget;
use abdoseg_storage::{Id, Key, Storage, keys::DatasetKeys};
use futures::StreamExt;
use tokio::sync::mpsc;
use tonic::Status;

use crate::{
    Error, InferenceClient,
    aggregate::aggregate,
    convert,
    measures::{CaseEvaluation, evaluate},
    objects::{self, ObjectLimits},
    overlay::Selection,
    rendering::{Request, Scene},
    report::{CaseResult, FailedCase, OverlayRecord, ReportRecord},
    reports,
    telemetry::Telemetry,
};

/// Cases evaluated at once unless the request says otherwise, and the most it may ask.
pub const DEFAULT_CONCURRENCY: usize = 2;
pub const MAX_CONCURRENCY: usize = 16;
/// The longest one case may spend in the inference service.
const SEGMENT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A checked request: everything the evaluation needs, resolved before it starts.
#[derive(Debug, Clone)]
pub struct Plan {
    pub report_id: String,
    pub created_at: u64,
    pub model: ModelRecord,
    pub dataset_id: String,
    pub split: Split,
    pub cases: Vec<CaseRecord>,
    pub surfaces: bool,
    pub concurrency: usize,
    pub overlays: bool,
    /// How the dataset's label values map onto classes (nnU-Net datasets); `None` when
    /// they are the classes.
    pub label_remap: Option<[Option<u8>; 256]>,
}

/// The evaluation's parts, cloned into its task.
#[derive(Debug, Clone)]
pub struct Evaluator {
    pub storage: Storage,
    pub inference: InferenceClient,
    pub limits: ObjectLimits,
    pub budget: MemoryBudget,
    pub telemetry: Telemetry,
}

type Events = mpsc::Sender<Result<EvaluateModelResponse, Status>>;

impl Evaluator {
    /// Resolves the model and the split's cases; fails fast on what cannot run.
    pub async fn plan(
        &self,
        model_id: &str,
        dataset_id: &str,
        split: Split,
        surfaces: bool,
        concurrency: u32,
        overlays: bool,
    ) -> Result<Plan, Error> {
        let dataset = Id::parse(dataset_id)
            .map_err(|e| Error::InvalidArgument(format!("dataset_id: {e}")))?;
        let concurrency = match concurrency as usize {
            0 => DEFAULT_CONCURRENCY,
            n if n > MAX_CONCURRENCY => {
                return Err(Error::InvalidArgument(format!(
                    "concurrency may be at most {MAX_CONCURRENCY}"
                )));
            }
            n => n,
        };
        let model_id = if model_id.is_empty() {
            "latest"
        } else {
            model_id
        };
        let model = abdoseg_registry::resolve(&self.storage, model_id).await?;
        let manifest: Manifest = self
            .storage
            .get_json(&DatasetKeys::new(&dataset).manifest())
            .await?;
        let cases: Vec<CaseRecord> = manifest.cases_in(split).cloned().collect();
        if cases.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "dataset {dataset_id} has no {} cases",
                convert::split_name(split)
            )));
        }
        let label_remap = if manifest.layout == NNUNET_LAYOUT {
            let key = Key::parse(&format!("{}/dataset.json", manifest.source_prefix))
                .map_err(|e| Error::FailedPrecondition(format!("dataset {dataset_id}: {e}")))?;
            let bytes = self.storage.get(&key).await?;
            Some(remap_from_dataset_json(&bytes).map_err(Error::FailedPrecondition)?)
        } else {
            None
        };
        let (report_id, created_at) = reports::new_report_id();
        Ok(Plan {
            report_id,
            created_at,
            model,
            dataset_id: dataset_id.to_owned(),
            split,
            cases,
            surfaces,
            concurrency,
            overlays,
            label_remap,
        })
    }

    /// Runs the plan, sending progress to `events`; the report is stored even if the
    /// caller has gone.
    pub async fn run(self, plan: Plan, events: Events) {
        let started = std::time::Instant::now();
        let plan = Arc::new(plan);
        let outcome = self.evaluate_all(&plan, &events).await;
        self.telemetry
            .evaluation_finished(outcome.is_ok(), started.elapsed());
        match outcome {
            Ok(report) => {
                let message = match convert::report(&report, true) {
                    Ok(message) => message,
                    Err(error) => {
                        let _ = events.send(Err(error.into())).await;
                        return;
                    }
                };
                let total = plan.cases.len() as u32;
                let _ = events
                    .send(Ok(EvaluateModelResponse {
                        cases_done: total,
                        cases_total: total,
                        event: Some(Event::Report(message)),
                    }))
                    .await;
            }
            Err(error) => {
                tracing::warn!(report_id = %plan.report_id, %error, "model evaluation failed");
                let _ = events.send(Err(error.into())).await;
            }
        }
    }

    async fn evaluate_all(&self, plan: &Arc<Plan>, events: &Events) -> Result<ReportRecord, Error> {
        let total = plan.cases.len() as u32;
        // Each case's future owns what it uses, so the stream can hold them all.
        let futures = (0..plan.cases.len()).map(|n| {
            let (this, plan) = (self.clone(), Arc::clone(plan));
            async move { this.case(&plan, &plan.cases[n]).await }
        });
        let mut outcomes = futures::stream::iter(futures).buffer_unordered(plan.concurrency);
        let (mut cases, mut failed) = (Vec::new(), Vec::new());
        let mut done = 0;
        while let Some((case_id, outcome)) = outcomes.next().await {
            done += 1;
            let event = match outcome {
                Ok(evaluation) => {
                    self.telemetry.case_evaluated(&evaluation);
                    let event = Event::CaseEvaluated(convert::case_metrics(&case_id, &evaluation));
                    cases.push(CaseResult {
                        case_id,
                        evaluation,
                    });
                    event
                }
                Err(error) => {
                    self.telemetry.case_failed();
                    let reason = error.to_string();
                    failed.push(FailedCase {
                        case_id: case_id.clone(),
                        reason: reason.clone(),
                    });
                    Event::CaseFailed(CaseEvaluationFailed { case_id, reason })
                }
            };
            let _ = events
                .send(Ok(EvaluateModelResponse {
                    cases_done: done,
                    cases_total: total,
                    event: Some(event),
                }))
                .await;
        }
        drop(outcomes);
        cases.sort_by(|a, b| a.case_id.cmp(&b.case_id));
        failed.sort_by(|a, b| a.case_id.cmp(&b.case_id));
        let evaluations: Vec<CaseEvaluation> = cases.iter().map(|c| c.evaluation.clone()).collect();
        let mut report = ReportRecord {
            report_id: plan.report_id.clone(),
            model_id: plan.model.model_id.clone(),
            dataset_id: plan.dataset_id.clone(),
            split: convert::split_name(plan.split).to_owned(),
            surface_metrics: plan.surfaces,
            created_at: plan.created_at,
            aggregate: aggregate(&evaluations),
            cases,
            failed,
            overlays: Vec::new(),
            history: plan.model.history.clone(),
            best_epoch: plan.model.best_epoch,
        };
        let mut pngs = HashMap::new();
        if plan.overlays {
            for (record, png) in self.overlays(plan, &report).await? {
                pngs.insert(record.key.clone(), png);
                report.overlays.push(record);
            }
        }
        reports::store(&self.storage, &report, &pngs).await?;
        Ok(report)
    }

    fn prediction_key(plan: &Plan, case_id: &str) -> Result<Key, Error> {
        let case = Id::parse(case_id).map_err(|e| Error::Internal(format!("case id: {e}")))?;
        Ok(reports::keys(&plan.report_id)?.prediction(&case))
    }

    /// One case: segmented by the inference service into the report's folder, then
    /// measured against its label map.
    async fn case(
        &self,
        plan: &Plan,
        case: &CaseRecord,
    ) -> (String, Result<CaseEvaluation, Error>) {
        let outcome = async {
            let output = Self::prediction_key(plan, &case.case_id)?;
            let mut request = tonic::Request::new(SegmentRequest {
                volume: Some(ObjectRef {
                    key: case.source_image.key.clone(),
                    ..ObjectRef::default()
                }),
                model_id: plan.model.model_id.clone(),
                options: None,
                output_key: output.to_string(),
            });
            request.set_timeout(SEGMENT_TIMEOUT);
            self.inference
                .clone()
                .segment(request)
                .await
                .map_err(Error::Inference)?;
            let truth_key =
                Key::parse(&case.source_label.key).map_err(|e| Error::Internal(e.to_string()))?;
            let read = (self.limits, &self.budget);
            let ((predicted, held), (truth, also_held)) = tokio::try_join!(
                objects::label_map(&self.storage, &output, read, "prediction"),
                objects::label_map_remapped(
                    &self.storage,
                    &truth_key,
                    read,
                    "ground truth",
                    plan.label_remap
                ),
            )?;
            let surfaces = plan.surfaces;
            tokio::task::spawn_blocking(move || {
                let _reservations = (held, also_held);
                evaluate(&predicted, &truth, surfaces)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::InvalidArgument(e.to_string()))
        }
        .await;
        (case.case_id.clone(), outcome)
    }

    /// Per organ, the best slice of the case where it scored best and the worst slice of
    /// the case where it scored worst, each with the slice's 2×3 grid.
    async fn overlays(
        &self,
        plan: &Plan,
        report: &ReportRecord,
    ) -> Result<Vec<(OverlayRecord, Vec<u8>)>, Error> {
        let mut wanted: BTreeSet<(String, u8, &'static str)> = BTreeSet::new();
        for class in 1..abdoseg_imaging::NUM_CLASSES {
            let scored = report
                .cases
                .iter()
                .filter_map(|c| c.evaluation.classes[class].iou.map(|iou| (iou, &c.case_id)));
            let best = scored.clone().max_by(|a, b| a.0.total_cmp(&b.0));
            let worst = scored.min_by(|a, b| a.0.total_cmp(&b.0));
            for (pick, selection) in [(best, Selection::Best), (worst, Selection::Worst)] {
                if let Some((_, case_id)) = pick {
                    wanted.insert((case_id.clone(), class as u8, selection.as_str()));
                }
            }
        }
        let intensity = plan.model.intensity().map_err(Error::FailedPrecondition)?;
        let keys = reports::keys(&plan.report_id)?;
        let mut records = Vec::new();
        let case_ids: BTreeSet<&String> = wanted.iter().map(|w| &w.0).collect();
        for case_id in case_ids {
            let Some(case) = plan.cases.iter().find(|c| &c.case_id == case_id) else {
                continue;
            };
            let image =
                Key::parse(&case.source_image.key).map_err(|e| Error::Internal(e.to_string()))?;
            let truth =
                Key::parse(&case.source_label.key).map_err(|e| Error::Internal(e.to_string()))?;
            let prediction = Self::prediction_key(plan, case_id)?;
            let read = (self.limits, &self.budget);
            let ((ct, held), (predicted, also_held), (truth, held_too)) = tokio::try_join!(
                objects::ct(&self.storage, &image, read, "image"),
                objects::label_map(&self.storage, &prediction, read, "prediction"),
                objects::label_map_remapped(
                    &self.storage,
                    &truth,
                    read,
                    "ground truth",
                    plan.label_remap
                ),
            )?;
            let reservations = (held, also_held, held_too);
            let selections: Vec<(u8, &'static str)> = wanted
                .iter()
                .filter(|w| &w.0 == case_id)
                .map(|w| (w.1, w.2))
                .collect();
            let intensity = intensity.clone();
            let prefix = format!("{case_id}-");
            let rendered = tokio::task::spawn_blocking(move || {
                let _reservations = reservations;
                let scene = Scene::new(&ct, &predicted, &truth, intensity)?;
                let requests: Vec<Request> = scene
                    .picks()
                    .into_iter()
                    .filter(|p| selections.contains(&(p.class, p.selection.as_str())))
                    .map(Request::from)
                    .collect();
                scene.render(&requests, &prefix)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
            for picture in rendered {
                let key = reports::overlay_key(&keys, &picture.name)?;
                self.storage
                    .put(&key, bytes::Bytes::from(picture.png.clone()))
                    .await?;
                let record = OverlayRecord {
                    case_id: case_id.clone(),
                    slice: picture.slice as u32,
                    class: picture.class,
                    selection: picture
                        .selection
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    key: key.to_string(),
                };
                records.push((record, picture.png));
            }
        }
        Ok(records)
    }
}
