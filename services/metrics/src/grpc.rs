//! The gRPC edge: converts requests, calls the service, converts back.

use std::{pin::Pin, time::Instant};

use abdoseg_dataset::proto::preprocessing_from_proto;
use abdoseg_imaging::intensity::{Intensity, Scheme};
use abdoseg_protos::common::v1::ObjectRef;
use abdoseg_protos::metrics::v1::{
    EvaluateModelRequest, EvaluateModelResponse, EvaluatePredictionRequest,
    EvaluatePredictionResponse, GetReportRequest, GetReportResponse, ListReportsRequest,
    ListReportsResponse, Overlay, RenderOverlaysRequest, RenderOverlaysResponse,
    metrics_service_server::MetricsService as Contract,
};
use abdoseg_server::deadline;
use abdoseg_storage::{CallerAccess, Id, Key, keys::ReportKeys};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::{
    Error, MetricsService, convert,
    measures::{EvaluationError, evaluate_unless, surface_bytes},
    objects,
    rendering::{Request as Draw, Scene},
    reports,
};

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Reports per ListReports page unless the request says otherwise, and the most.
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 500;
/// Most slices one RenderOverlays call may draw.
const MAX_SLICES: usize = 64;

fn object_key(
    field: &str,
    reference: Option<ObjectRef>,
    access: CallerAccess,
) -> Result<Key, Error> {
    let reference =
        reference.ok_or_else(|| Error::InvalidArgument(format!("{field} is required")))?;
    Key::parse_for(&reference.key, access)
        .map_err(|e| Error::InvalidArgument(format!("{field}: {e}")))
}

fn blocking_error(error: tokio::task::JoinError) -> Error {
    Error::Internal(error.to_string())
}

#[tonic::async_trait]
impl Contract for MetricsService {
    type EvaluateModelStream = EventStream<EvaluateModelResponse>;

    async fn evaluate_prediction(
        &self,
        request: Request<EvaluatePredictionRequest>,
    ) -> Result<Response<EvaluatePredictionResponse>, Status> {
        let deadline = deadline(request.metadata());
        let request = request.into_inner();
        let prediction = object_key("prediction", request.prediction, CallerAccess::ReadLabels)?;
        let truth = object_key(
            "ground_truth",
            request.ground_truth,
            CallerAccess::ReadLabels,
        )?;
        let ticket = self.volumes.admit().map_err(Error::from)?;
        let _running = ticket.start().await;
        let read = (self.limits, &self.requests.budget);
        let ((predicted, held), (truth, also_held)) = tokio::try_join!(
            objects::label_map(&self.storage, &prediction, read, "prediction"),
            objects::label_map(&self.storage, &truth, read, "ground_truth"),
        )?;
        let started = Instant::now();
        let surfaces = request.surface_metrics;
        // Stops the blocking work when this call is dropped (the caller went away) or
        // its deadline passes.
        let token = CancellationToken::new();
        let _stop_on_drop = token.clone().drop_guard();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut reservation = held;
            let _also = also_held;
            if surfaces && predicted.geometry.same_grid(&truth.geometry) {
                // Surface metrics take memory by the surface voxel: counted first,
                // reserved before any is held.
                let extra = surface_bytes(&predicted, &truth);
                let held_bytes = reservation.held_mib() << 20;
                reservation
                    .grow_to(held_bytes + extra)
                    .map_err(Error::from)?;
            }
            let cancelled = || token.is_cancelled() || deadline.is_some_and(|d| Instant::now() > d);
            evaluate_unless(&predicted, &truth, surfaces, &cancelled).map_err(|e| match e {
                EvaluationError::Cancelled if deadline.is_some_and(|d| Instant::now() > d) => {
                    Error::DeadlineExceeded
                }
                EvaluationError::Cancelled => Error::Cancelled,
                EvaluationError::GridMismatch { .. } => Error::InvalidArgument(e.to_string()),
            })
        })
        .await
        .map_err(blocking_error)?;
        self.telemetry
            .prediction_evaluated(outcome.is_ok(), started.elapsed());
        let case = outcome?;
        Ok(Response::new(EvaluatePredictionResponse {
            metrics: Some(convert::case_metrics("", &case)),
        }))
    }

    async fn evaluate_model(
        &self,
        request: Request<EvaluateModelRequest>,
    ) -> Result<Response<Self::EvaluateModelStream>, Status> {
        let request = request.into_inner();
        let split = convert::split_from_proto(request.split)?;
        let evaluator = self.evaluator();
        let plan = evaluator
            .plan(
                &request.model_id,
                &request.dataset_id,
                split,
                request.surface_metrics,
                request.concurrency,
                request.overlays,
            )
            .await?;
        tracing::info!(
            report_id = %plan.report_id,
            model_id = %plan.model.model_id,
            cases = plan.cases.len(),
            "model evaluation started"
        );
        let (events, receiver) = mpsc::channel(16);
        tokio::spawn(evaluator.run(plan, events));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn render_overlays(
        &self,
        request: Request<RenderOverlaysRequest>,
    ) -> Result<Response<RenderOverlaysResponse>, Status> {
        let request = request.into_inner();
        let image = object_key("image", request.image, CallerAccess::ReadVolume)?;
        let prediction = object_key("prediction", request.prediction, CallerAccess::ReadLabels)?;
        let truth = object_key(
            "ground_truth",
            request.ground_truth,
            CallerAccess::ReadLabels,
        )?;
        if request.slices.len() > MAX_SLICES {
            return Err(
                Error::InvalidArgument(format!("at most {MAX_SLICES} slices per call")).into(),
            );
        }
        let config =
            preprocessing_from_proto(request.preprocessing).map_err(Error::InvalidArgument)?;
        config.validate().map_err(Error::InvalidArgument)?;
        // zscore has no gray levels to show: the window alone is drawn.
        let intensity = config.intensity(None).unwrap_or(Intensity {
            window: config.window(),
            scheme: Scheme::None,
        });
        let prefix = if request.output_prefix.is_empty() {
            None
        } else {
            Some(
                Key::parse_for(
                    request.output_prefix.trim_end_matches('/'),
                    CallerAccess::WriteOverlays,
                )
                .map_err(|e| Error::InvalidArgument(format!("output_prefix: {e}")))?,
            )
        };
        let ticket = self.volumes.admit().map_err(Error::from)?;
        let _running = ticket.start().await;
        let read = (self.limits, &self.requests.budget);
        let ((ct, held), (predicted, also_held), (truth, held_too)) = tokio::try_join!(
            objects::ct(&self.storage, &image, read, "image"),
            objects::label_map(&self.storage, &prediction, read, "prediction"),
            objects::label_map(&self.storage, &truth, read, "ground_truth"),
        )?;
        let slices = request.slices;
        let rendered = tokio::task::spawn_blocking(move || {
            let _reservations = (held, also_held, held_too);
            let scene = Scene::new(&ct, &predicted, &truth, intensity)?;
            let draws: Vec<Draw> = if slices.is_empty() {
                scene.picks().into_iter().map(Draw::from).collect()
            } else {
                slices
                    .iter()
                    .map(|&slice| Draw {
                        slice: slice as usize,
                        class: None,
                        selection: None,
                    })
                    .collect()
            };
            scene.render(&draws, "")
        })
        .await
        .map_err(blocking_error)??;
        let fallback = ReportKeys::new(
            &Id::parse(&reports::new_report_id().0).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let mut overlays = Vec::with_capacity(rendered.len());
        for picture in rendered {
            let key = match &prefix {
                Some(prefix) => Key::parse(&format!("{prefix}/{}.png", picture.name))
                    .map_err(|e| Error::InvalidArgument(format!("output_prefix: {e}")))?,
                None => reports::overlay_key(&fallback, &picture.name)?,
            };
            // Create-only: a caller's prefix never replaces a stored object.
            let info = self
                .storage
                .put_once(&key, Bytes::from(picture.png))
                .await
                .map_err(Error::from)?;
            overlays.push(Overlay {
                slice: picture.slice as u32,
                organ: convert::organ(picture.class),
                png: Some(ObjectRef {
                    key: key.to_string(),
                    etag: info.etag.unwrap_or_default(),
                    size_bytes: info.size,
                }),
                selection: picture
                    .selection
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            });
        }
        Ok(Response::new(RenderOverlaysResponse { overlays }))
    }

    async fn get_report(
        &self,
        request: Request<GetReportRequest>,
    ) -> Result<Response<GetReportResponse>, Status> {
        let record = reports::load(&self.storage, &request.into_inner().report_id).await?;
        Ok(Response::new(GetReportResponse {
            report: Some(convert::report(&record, true)?),
        }))
    }

    async fn list_reports(
        &self,
        request: Request<ListReportsRequest>,
    ) -> Result<Response<ListReportsResponse>, Status> {
        let request = request.into_inner();
        let size = match request.page_size as usize {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let start = if request.page_token.is_empty() {
            0
        } else {
            request.page_token.parse::<usize>().map_err(|_| {
                Error::InvalidArgument("page_token is not one this service gave".into())
            })?
        };
        let all = reports::list(&self.storage).await?;
        let page: Vec<_> = all
            .iter()
            .skip(start)
            .take(size)
            .map(|r| convert::report(r, false))
            .collect::<Result<_, Error>>()?;
        let next = start + page.len();
        Ok(Response::new(ListReportsResponse {
            reports: page,
            next_page_token: if next < all.len() {
                next.to_string()
            } else {
                String::new()
            },
        }))
    }
}
