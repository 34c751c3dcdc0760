//! One Segment call: admission (a bounded queue), the warm model, the volume from the
//! store, the pipeline on a blocking thread, the label map back to the store.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use abdoseg_dataset::{proto::geometry_to_proto, sha256_hex};
use abdoseg_imaging::nifti::{ReadLimits, read_ct, read_info, write_labels};
use abdoseg_protos::{
    common::v1::{BoundingBox, ObjectRef, Organ, OrganStatistics},
    inference::v1::{
        SegmentOptions, SegmentRequest, SegmentResponse, SegmentationSummary, StageTimings,
    },
};
use abdoseg_server::{Reservation, Ticket};
use abdoseg_storage::{CallerAccess, Id, Key, keys::prediction};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::{
    Error, InferenceService,
    cache::Network,
    pipeline::{Options, peak_bytes, segment},
    postprocess::organ_figures,
};

/// Longest wait for memory held by other work, when the caller set no shorter deadline.
const MEMORY_PATIENCE: Duration = Duration::from_secs(30);

fn duration(d: Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(d).ok()
}

impl InferenceService {
    /// Takes a place in the queue, or says RESOURCE_EXHAUSTED when it is full.
    pub fn admit(&self) -> Result<Ticket, Error> {
        self.queue
            .admit()
            .map_err(|full| Error::ResourceExhausted(full.to_string()))
    }

    /// The request's options with the service's defaults.
    pub fn options(&self, options: Option<SegmentOptions>) -> Options {
        let options = options.unwrap_or_default();
        Options {
            batch_size: match options.batch_size {
                0 => self.limits.batch_size,
                n => (n as usize).min(256),
            },
            keep_largest_components: options.keep_largest_components.unwrap_or(true),
            // The model's own, set where the model is known.
            context: abdoseg_model::SliceContext::TWO_D,
        }
    }

    /// Segments a volume in the store and writes the label map to the store.
    pub async fn segment_in_store(
        &self,
        request: SegmentRequest,
        deadline: Option<Instant>,
    ) -> Result<SegmentResponse, Error> {
        let volume = request
            .volume
            .ok_or_else(|| Error::InvalidArgument("volume is required".into()))?;
        let key = Key::parse_for(&volume.key, CallerAccess::ReadVolume)
            .map_err(|e| Error::InvalidArgument(format!("volume: {e}")))?;
        let output = (!request.output_key.is_empty())
            .then(|| output_key(&request.output_key))
            .transpose()?;
        let options = self.options(request.options);
        let admission = self.admit()?;
        let started = Instant::now();
        // The file's bytes are reserved before they are read.
        let size = self.storage.head(&key).await?.size;
        let reservation = self
            .requests
            .budget
            .try_reserve(size)
            .map_err(Error::Budget)?;
        let bytes = self
            .storage
            .get_bounded(&key, self.limits.max_input_bytes)
            .await?;
        let read = started.elapsed();
        let gzip = output.as_ref().is_none_or(|k| k.as_str().ends_with(".gz"));
        let mut done = self
            .run(
                (admission, reservation),
                bytes,
                &request.model_id,
                options,
                gzip,
                deadline,
            )
            .await?;
        let started = Instant::now();
        let encoded = Bytes::from(done.encoded);
        let (output, info) = match output {
            // Create-only: a caller never replaces what is stored; the same request again
            // (same bytes) is answered with the object already there.
            Some(key) => {
                let info = self.storage.put_once(&key, encoded).await?;
                (key, info)
            }
            // The service's own content-addressed key (input, model, options): what is
            // there can only be this label map, or a stale or planted copy to replace.
            None => {
                let key = prediction(&Id::parse(&format!(
                    "{}-{}{}",
                    &done.summary.input_sha256[..16],
                    done.summary.model_id,
                    if options.keep_largest_components {
                        ""
                    } else {
                        "-all-components"
                    }
                ))?);
                let info = self.storage.put(&key, encoded).await?;
                (key, info)
            }
        };
        if let Some(timings) = done.summary.timings.as_mut() {
            timings.read = duration(read);
            timings.write = duration(
                started.elapsed()
                    + timings
                        .write
                        .and_then(|d| Duration::try_from(d).ok())
                        .unwrap_or_default(),
            );
        }
        Ok(SegmentResponse {
            label_map: Some(ObjectRef {
                key: output.to_string(),
                etag: info.etag.unwrap_or_default(),
                size_bytes: info.size,
            }),
            summary: Some(done.summary),
        })
    }

    /// The core of both RPCs: a place in the queue, the warm model, the memory the
    /// volume needs (estimated from its header, reserved before anything is decoded),
    /// the pipeline on a blocking thread (stopped when the caller goes away or its
    /// deadline passes), the encoded label map and its summary.
    pub async fn run(
        &self,
        (admission, mut reservation): (Ticket, Reservation),
        bytes: Bytes,
        model_id: &str,
        options: Options,
        gzip: bool,
        deadline: Option<Instant>,
    ) -> Result<Done, Error> {
        let limits = ReadLimits {
            max_bytes: self.limits.max_voxel_bytes,
            max_voxels: self.requests.max_voxels,
            ..ReadLimits::default()
        };
        // What the volume needs whatever the model: refused before it waits for a slot.
        let info = read_info(&bytes, &limits).map_err(Error::InvalidVolume)?;
        self.requests
            .budget
            .check(peak_bytes(&info, bytes.len() as u64, (1, 1), 1))
            .map_err(Error::Budget)?;
        let queued = Instant::now();
        let _slot = admission.start().await.ok_or(Error::Stopping)?;
        let queued = queued.elapsed();
        let model = self.cache.get(&self.storage, model_id).await?;
        let preprocessing = &model.record.preprocessing;
        let peak = peak_bytes(
            &info,
            bytes.len() as u64,
            (preprocessing.slice_height, preprocessing.slice_width),
            options.batch_size,
        );
        let patience = deadline.map_or(MEMORY_PATIENCE, |d| {
            d.saturating_duration_since(Instant::now())
                .min(MEMORY_PATIENCE)
        });
        reservation
            .grow_to_within(peak, patience)
            .await
            .map_err(Error::Budget)?;
        tracing::debug!(estimate_mib = peak >> 20, "segmentation memory reserved");

        // Stops the blocking work when this call is dropped (the caller went away).
        let token = CancellationToken::new();
        let _stop_on_drop = token.clone().drop_guard();
        let worker = Arc::clone(&model);
        // Hashing, decoding and the pipeline all run off the async runtime.
        let (input_sha256, segmentation, ct, encoded, write) =
            tokio::task::spawn_blocking(move || {
                // Held until the blocking work ends, even if the caller went away.
                let _reservation = reservation;
                let input_sha256 = sha256_hex(&bytes);
                let ct = read_ct(&bytes, &limits).map_err(Error::InvalidVolume)?;
                drop(bytes);
                let cancelled =
                    || token.is_cancelled() || deadline.is_some_and(|d| Instant::now() > d);
                let preprocessing = &worker.record.preprocessing;
                let options = Options {
                    context: worker.record.spec.training.context,
                    ..options
                };
                let segmentation = match &worker.net {
                    Network::Cpu(net) => segment(
                        net,
                        &Default::default(),
                        &worker.intensity,
                        preprocessing,
                        &ct,
                        options,
                        &cancelled,
                    ),
                    #[cfg(feature = "cuda")]
                    Network::Cuda(net) => segment(
                        net,
                        &Default::default(),
                        &worker.intensity,
                        preprocessing,
                        &ct,
                        options,
                        &cancelled,
                    ),
                }
                .map_err(|e| {
                    let late = deadline.is_some_and(|d| Instant::now() > d);
                    if late && matches!(e, Error::Cancelled) {
                        Error::DeadlineExceeded
                    } else {
                        e
                    }
                })?;
                let started = Instant::now();
                let encoded = write_labels(&segmentation.labels, gzip)
                    .map_err(|e| Error::Internal(format!("cannot encode the label map: {e}")))?;
                Ok::<_, Error>((input_sha256, segmentation, ct, encoded, started.elapsed()))
            })
            .await
            .map_err(|e| Error::Internal(format!("segmentation crashed: {e}")))??;
        model.served();

        let voxel_ml = ct.geometry.voxel_volume_ml();
        let organs = organ_figures(&segmentation.labels.data, &ct.data)
            .into_iter()
            .map(|f| OrganStatistics {
                organ: Organ::try_from(i32::from(f.class) + 1).unwrap_or(Organ::Unspecified) as i32,
                voxel_count: f.voxels,
                volume_ml: f.voxels as f64 * voxel_ml,
                mean_hu: f.mean_hu,
                bounding_box: f.bounds.map(|(min, max)| BoundingBox {
                    min: min.iter().map(|&v| v as u32).collect(),
                    max: max.iter().map(|&v| v as u32).collect(),
                }),
            })
            .collect();
        Ok(Done {
            summary: SegmentationSummary {
                model_id: model.record.model_id.clone(),
                model_version: model.record.abdoseg_version.clone(),
                organs,
                timings: Some(StageTimings {
                    read: None,
                    preprocess: duration(segmentation.preprocess),
                    inference: duration(segmentation.inference),
                    postprocess: duration(segmentation.postprocess),
                    write: duration(write),
                    queued: duration(queued),
                }),
                output_sha256: sha256_hex(&encoded),
                input_sha256,
                geometry: Some(geometry_to_proto(&ct.geometry)),
                device: self.device_proto() as i32,
            },
            encoded,
        })
    }
}

/// A caller's output key: where a caller may write a label map.
fn output_key(value: &str) -> Result<Key, Error> {
    Key::parse_for(value, CallerAccess::WritePrediction)
        .map_err(|e| Error::InvalidArgument(format!("output_key: {e}")))
}

/// A finished segmentation: the encoded label map and its summary.
#[derive(Debug)]
pub struct Done {
    pub encoded: Vec<u8>,
    pub summary: SegmentationSummary,
}
