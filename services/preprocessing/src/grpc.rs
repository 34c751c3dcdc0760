//! The gRPC edge: converts requests, calls the service, converts back.

use std::pin::Pin;

use abdoseg_dataset::{
    config::Scheme,
    manifest::Manifest,
    prepare::{volume_shard, volume_shard_peak_bytes},
    sha256_hex,
};
use abdoseg_imaging::{
    intensity::{Intensity, Scheme as ImagingScheme, ZScore},
    nifti::{read_ct, read_info},
};
use abdoseg_protos::{
    common::v1::ObjectRef,
    preprocessing::v1::{
        CaseFailed, CaseFinished, DatasetLayout, DatasetReady, DatasetSummary, GetManifestRequest,
        GetManifestResponse, ListDatasetsRequest, ListDatasetsResponse, PrepareDatasetRequest,
        PrepareDatasetResponse, PreprocessVolumeRequest, PreprocessVolumeResponse,
        UploadVolumeRequest, UploadVolumeResponse, prepare_dataset_response::Event as ProtoEvent,
        preprocessing_service_server::PreprocessingService as Contract,
    },
};
use abdoseg_storage::{
    CallerAccess, Id, Key, StorageError,
    keys::{DatasetKeys, preprocessed_volume},
};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Error, PreprocessingService, convert,
    discover::{Layout, discover},
    job::{self, Event, Job, PrepareRequest},
};

/// Longest wait for memory that other work holds.
pub(crate) const MEMORY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn key(field: &str, value: &str, access: CallerAccess) -> Result<Key, Error> {
    Key::parse_for(value, access).map_err(|e| Error::InvalidArgument(format!("{field}: {e}")))
}

pub(crate) use abdoseg_dataset::proto::geometry_to_proto;

impl PreprocessingService {
    async fn manifest(&self, id: &Id) -> Result<Manifest, Error> {
        Ok(self
            .storage
            .get_json(&DatasetKeys::new(id).manifest())
            .await?)
    }
}

#[tonic::async_trait]
impl Contract for PreprocessingService {
    type PrepareDatasetStream = EventStream<PrepareDatasetResponse>;

    async fn prepare_dataset(
        &self,
        request: Request<PrepareDatasetRequest>,
    ) -> Result<Response<Self::PrepareDatasetStream>, Status> {
        let request = request.into_inner();
        let source_prefix = key(
            "source_prefix",
            &request.source_prefix,
            CallerAccess::ReadRawDataset,
        )?;
        let layout = match DatasetLayout::try_from(request.layout) {
            Ok(DatasetLayout::Unspecified) => None,
            Ok(DatasetLayout::Abdomenct1k) => Some(Layout::AbdomenCt1k),
            Ok(DatasetLayout::Nnunet) => Some(Layout::NnUnet),
            Err(_) => {
                return Err(
                    Error::InvalidArgument(format!("unknown layout {}", request.layout)).into(),
                );
            }
        };
        let preprocessing = convert::preprocessing(request.preprocessing)?;
        let split = convert::split_fractions(request.split)?;
        let raw = discover(&self.storage, &source_prefix, layout).await?;
        let job = Job::new(
            PrepareRequest {
                source_prefix,
                preprocessing,
                seed: request.seed,
                split,
            },
            raw,
        )?;
        let dataset_id = job.dataset_id.to_string();
        let total = job.raw.cases.len() as u32;
        tracing::info!(dataset = %dataset_id, cases = total, "preparing dataset");

        let (sender, receiver) = mpsc::channel::<Result<Event, Error>>(64);
        let storage = self.storage.clone();
        let (workers, token) = (self.workers, self.lifecycle.token());
        let limits = (self.limits, self.requests.budget.clone());
        // A bounded number of preparations run (each `workers` cases at once) or wait.
        let ticket = self.preparations.admit().map_err(Error::from)?;
        // The job runs to the end even if the caller goes away; its work is kept.
        self.lifecycle.spawn(async move {
            let Some(_running) = ticket.start().await else {
                return;
            };
            let result = job::run(storage, job, workers, limits, sender.clone(), token).await;
            if let Err(error) = result {
                let _ = sender.send(Err(error)).await;
            }
        });

        let (mut done, mut slices) = (0u32, 0u64);
        let stream = ReceiverStream::new(receiver).map(move |event| {
            let event = event.map_err(Status::from)?;
            let event = match event {
                Event::CaseFinished {
                    case_id,
                    split,
                    slices: count,
                    reused,
                } => {
                    done += 1;
                    slices += count as u64;
                    ProtoEvent::CaseFinished(CaseFinished {
                        case_id,
                        split: convert::split_to_proto(split) as i32,
                        slice_count: count as u32,
                        reused,
                    })
                }
                Event::CaseFailed { case_id, reason } => {
                    done += 1;
                    ProtoEvent::CaseFailed(CaseFailed { case_id, reason })
                }
                Event::Ready { manifest, failed } => ProtoEvent::DatasetReady(DatasetReady {
                    manifest: Some(ObjectRef {
                        key: manifest.to_string(),
                        ..ObjectRef::default()
                    }),
                    cases_failed: failed as u32,
                }),
            };
            Ok(PrepareDatasetResponse {
                dataset_id: dataset_id.clone(),
                cases_done: done,
                cases_total: total,
                slices_written: slices,
                event: Some(event),
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn preprocess_volume(
        &self,
        request: Request<PreprocessVolumeRequest>,
    ) -> Result<Response<PreprocessVolumeResponse>, Status> {
        let request = request.into_inner();
        let volume = request
            .volume
            .ok_or_else(|| Error::InvalidArgument("volume is required".into()))?;
        let volume_key = key("volume", &volume.key, CallerAccess::ReadVolume)?;
        let config = convert::preprocessing(request.preprocessing)?;
        // Admitted, then the file's bytes reserved before they are read, then the
        // decoding's peak (estimated from the header) before anything is decoded.
        let ticket = self.volumes.admit()?;
        let size = self
            .storage
            .head(&volume_key)
            .await
            .map_err(Error::from)?
            .size;
        let mut reservation = self
            .requests
            .budget
            .try_reserve(size)
            .map_err(Error::from)?;
        let bytes = self
            .storage
            .get_bounded(&volume_key, self.limits.max_bytes)
            .await
            .map_err(Error::from)?;
        let info = read_info(&bytes, &self.limits).map_err(Error::from)?;
        // What is written to the store is bounded like what is read from it.
        let (slices, _, _) = info.axial_shape();
        let pixel = if config.scheme == Scheme::Zscore {
            4
        } else {
            1
        };
        let shard_bytes = slices * (config.slice_height * config.slice_width) as u64 * (pixel + 1);
        if shard_bytes > self.limits.max_bytes {
            return Err(Error::InvalidArgument(format!(
                "{slices} slices of {}×{} would take {shard_bytes} bytes, over the limit of {}; \
                 ask for smaller slices",
                config.slice_height, config.slice_width, self.limits.max_bytes
            ))
            .into());
        }
        let peak = volume_shard_peak_bytes(&info, bytes.len() as u64, &config);
        self.requests.budget.check(peak).map_err(Error::from)?;
        let _running = ticket.start().await.ok_or(Error::ShuttingDown)?;
        reservation
            .grow_to_within(peak, MEMORY_PATIENCE)
            .await
            .map_err(Error::from)?;
        let limits = self.limits;
        let digest_input = [
            sha256_hex(&bytes).as_bytes(),
            &serde_json::to_vec(&config).map_err(|e| Error::Internal(e.to_string()))?,
        ]
        .concat();
        let id =
            Id::parse(&format!("pv-{}", &sha256_hex(&digest_input)[..16])).map_err(Error::from)?;
        let (shard, geometry, slices) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            // Held until the blocking work ends, even if the caller went away.
            let _reservation = reservation;
            let ct = read_ct(&bytes, &limits)?;
            let intensity = match config.scheme {
                Scheme::Zscore => Intensity {
                    window: config.window(),
                    scheme: ImagingScheme::ZScore(ZScore::of_body(ct.data.iter())?),
                },
                Scheme::None | Scheme::He { .. } | Scheme::Clahe { .. } => {
                    config.intensity(None).map_err(Error::InvalidArgument)?
                }
            };
            let shard = volume_shard(&ct, &config, &intensity)?;
            let slices = abdoseg_imaging::slices::Canonical::of(&ct).slice_count();
            Ok((shard, geometry_to_proto(&ct.geometry), slices))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let written = self
            .storage
            .put(&preprocessed_volume(&id), Bytes::from(shard))
            .await
            .map_err(Error::from)?;
        Ok(Response::new(PreprocessVolumeResponse {
            slices: Some(ObjectRef {
                key: written.key.to_string(),
                etag: written.etag.unwrap_or_default(),
                size_bytes: written.size,
            }),
            slice_count: slices as u32,
            geometry: Some(geometry),
        }))
    }

    async fn get_manifest(
        &self,
        request: Request<GetManifestRequest>,
    ) -> Result<Response<GetManifestResponse>, Status> {
        let id = Id::parse(&request.into_inner().dataset_id)
            .map_err(|e| Error::InvalidArgument(format!("dataset_id: {e}")))?;
        let manifest = self.manifest(&id).await?;
        Ok(Response::new(GetManifestResponse {
            manifest: Some(convert::manifest_to_proto(&manifest)),
        }))
    }

    async fn list_datasets(
        &self,
        request: Request<ListDatasetsRequest>,
    ) -> Result<Response<ListDatasetsResponse>, Status> {
        let request = request.into_inner();
        let page_size = match request.page_size {
            0 => 50,
            n => n.min(500) as usize,
        };
        let ids = self
            .storage
            .list_children(&DatasetKeys::all())
            .await
            .map_err(Error::from)?;
        let mut datasets = Vec::new();
        let mut next_page_token = String::new();
        for name in ids
            .into_iter()
            .filter(|n| n.as_str() > request.page_token.as_str())
        {
            let Ok(id) = Id::parse(&name) else { continue };
            let manifest = match self.manifest(&id).await {
                Ok(manifest) => manifest,
                // Still being prepared: not listed yet.
                Err(Error::Storage(StorageError::NotFound { .. })) => continue,
                Err(other) => return Err(other.into()),
            };
            if datasets.len() == page_size {
                next_page_token = datasets
                    .last()
                    .map(|d: &DatasetSummary| d.dataset_id.clone())
                    .unwrap_or_default();
                break;
            }
            datasets.push(DatasetSummary {
                dataset_id: manifest.dataset_id.clone(),
                source_prefix: manifest.source_prefix.clone(),
                preprocessing: Some(convert::preprocessing_to_proto(&manifest.preprocessing)),
                case_count: manifest.cases.len() as u32,
                created_at: Some(prost_types::Timestamp {
                    seconds: manifest.created_at as i64,
                    nanos: 0,
                }),
            });
        }
        Ok(Response::new(ListDatasetsResponse {
            datasets,
            next_page_token,
        }))
    }

    async fn upload_volume(
        &self,
        request: Request<Streaming<UploadVolumeRequest>>,
    ) -> Result<Response<UploadVolumeResponse>, Status> {
        Ok(Response::new(self.upload(request.into_inner()).await?))
    }
}
