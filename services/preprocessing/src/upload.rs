//! UploadVolume: a NIfTI file streamed in chunks, checked whole, then stored.

use abdoseg_dataset::sha256_hex;
use abdoseg_imaging::nifti::{read_ct, read_info, read_labels};
use abdoseg_protos::{
    common::v1::ObjectRef,
    preprocessing::v1::{
        UploadVolumeRequest, UploadVolumeResponse, upload_destination::Destination,
        upload_volume_request::Message,
    },
};
use abdoseg_storage::{
    Id, Key,
    keys::{RawDatasetKeys, volume},
};
use bytes::Bytes;
use tokio_stream::StreamExt;
use tonic::Streaming;

use crate::{Error, PreprocessingService, grpc::geometry_to_proto};

fn id(field: &str, value: &str) -> Result<Id, Error> {
    Id::parse(value).map_err(|e| Error::InvalidArgument(format!("{field}: {e}")))
}

impl PreprocessingService {
    pub(crate) async fn upload(
        &self,
        mut upload: Streaming<UploadVolumeRequest>,
    ) -> Result<UploadVolumeResponse, Error> {
        let idle = self.requests.idle_timeout;
        let silent = || {
            Error::InvalidArgument(format!(
                "the upload sent nothing for {} s; it was dropped",
                idle.as_secs()
            ))
        };
        let first = tokio::time::timeout(idle, upload.next())
            .await
            .map_err(|_| silent())?;
        let start = match first.transpose().map_err(Error::Upload)? {
            Some(UploadVolumeRequest {
                message: Some(Message::Start(start)),
            }) => start,
            Some(_) => {
                return Err(Error::InvalidArgument(
                    "the first message must be start, before any chunk".into(),
                ));
            }
            None => return Err(Error::InvalidArgument("the upload was empty".into())),
        };
        let (key, is_label): (Key, bool) = match start.destination.and_then(|d| d.destination) {
            Some(Destination::DatasetImage(case)) => (
                RawDatasetKeys::imported(&id("dataset", &case.dataset)?)
                    .image(&id("case_id", &case.case_id)?),
                false,
            ),
            Some(Destination::DatasetLabel(case)) => (
                RawDatasetKeys::imported(&id("dataset", &case.dataset)?)
                    .label(&id("case_id", &case.case_id)?),
                true,
            ),
            Some(Destination::VolumeId(volume_id)) => {
                (volume(&id("volume_id", &volume_id)?), false)
            }
            None => return Err(Error::InvalidArgument("destination is required".into())),
        };
        let limit = self.limits.max_bytes;
        if start.total_size_bytes == 0 || start.total_size_bytes > limit {
            return Err(Error::InvalidArgument(format!(
                "total_size_bytes must be 1 to {limit}, not {}",
                start.total_size_bytes
            )));
        }
        let expected = start.total_size_bytes as usize;
        // Bytes are reserved as they arrive (never the declared size up front), and a
        // silence longer than the idle timeout ends the upload: a slow or silent client
        // holds neither memory nor a place among the running calls.
        let mut reservation = self.requests.budget.empty();
        let mut data = Vec::new();
        while let Some(message) = tokio::time::timeout(idle, upload.next())
            .await
            .map_err(|_| silent())?
        {
            let message = message.map_err(Error::Upload)?;
            match message.message {
                Some(Message::Chunk(chunk)) => {
                    if data.len() + chunk.len() > expected {
                        return Err(Error::InvalidArgument(format!(
                            "the upload is larger than its declared {expected} bytes"
                        )));
                    }
                    // Twice the bytes: the buffer doubles as it grows.
                    reservation.grow_to(2 * (data.len() + chunk.len()) as u64)?;
                    data.extend_from_slice(&chunk);
                }
                Some(Message::Start(_)) | None => {
                    return Err(Error::InvalidArgument(
                        "only chunks may follow start".into(),
                    ));
                }
            }
        }
        if data.len() != expected {
            return Err(Error::InvalidArgument(format!(
                "the upload ended after {} of {expected} bytes",
                data.len()
            )));
        }
        if !start.sha256.is_empty() && !start.sha256.eq_ignore_ascii_case(&sha256_hex(&data)) {
            return Err(Error::InvalidArgument(
                "the upload's SHA-256 does not match".into(),
            ));
        }
        // Only a readable volume is stored: decoding it is admitted and its memory
        // reserved (estimated from the header) before it starts.
        let ticket = self.volumes.admit()?;
        let limits = self.limits;
        let info = read_info(&data, &limits)?;
        let decoded = if is_label { 1 } else { 4 };
        let peak = data.len() as u64 + info.data_bytes + info.voxels() * decoded;
        self.requests.budget.check(peak)?;
        let _running = ticket.start().await.ok_or(Error::ShuttingDown)?;
        reservation
            .grow_to_within(peak, crate::grpc::MEMORY_PATIENCE)
            .await?;
        let (data, geometry) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let _reservation = reservation;
            let geometry = if is_label {
                read_labels(&data, &limits)?.geometry
            } else {
                read_ct(&data, &limits)?.geometry
            };
            Ok((data, geometry))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        // Create-only: an upload never replaces a stored volume (a training image, say);
        // the same bytes again are answered with the object already there.
        let written = self.storage.put_once(&key, Bytes::from(data)).await?;
        Ok(UploadVolumeResponse {
            volume: Some(ObjectRef {
                key: written.key.to_string(),
                etag: written.etag.unwrap_or_default(),
                size_bytes: written.size,
            }),
            geometry: Some(geometry_to_proto(&geometry)),
        })
    }
}
