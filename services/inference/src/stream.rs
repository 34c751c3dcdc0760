//! SegmentStream: the volume comes in chunks (bounded by config), the label map goes back
//! in chunks, then the summary — for hospital systems without access to the store.

use std::time::Instant;

use abdoseg_protos::inference::v1::{
    SegmentStreamRequest, SegmentStreamResponse, SegmentStreamStart, segment_stream_request,
    segment_stream_response,
};
use bytes::BytesMut;
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};

use crate::{Error, InferenceService};

/// Size of the label map's chunks on the way back.
const CHUNK: usize = 1 << 20;

impl InferenceService {
    /// Receives the upload after its start message, segments it, returns the messages.
    pub async fn segment_upload(
        &self,
        start: SegmentStreamStart,
        mut upload: Streaming<SegmentStreamRequest>,
        deadline: Option<Instant>,
    ) -> Result<Vec<SegmentStreamResponse>, Error> {
        let limit = self.limits.max_input_bytes;
        if start.total_size_bytes > limit {
            return Err(Error::InvalidArgument(format!(
                "the upload declares {} bytes; this service takes at most {limit}",
                start.total_size_bytes
            )));
        }
        let options = self.options(start.options);
        // The upload is received before any place in the queue is taken, so that a
        // slow or silent client holds no slot; its bytes are reserved as they arrive,
        // and a silence longer than the idle timeout ends it.
        let idle = self.requests.idle_timeout;
        let mut reservation = self.requests.budget.empty();
        let mut body = BytesMut::new();
        loop {
            let message = match tokio::time::timeout(idle, upload.next()).await {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(_) => {
                    return Err(Error::InvalidArgument(format!(
                        "the upload sent nothing for {} s; it was dropped",
                        idle.as_secs()
                    )));
                }
            };
            let message = message.map_err(Error::Upload)?;
            match message.message {
                Some(segment_stream_request::Message::Chunk(chunk)) => {
                    let total = body.len() as u64 + chunk.len() as u64;
                    if total > limit {
                        return Err(Error::InvalidArgument(format!(
                            "the upload exceeds this service's limit of {limit} bytes"
                        )));
                    }
                    // Twice the bytes: the buffer doubles as it grows.
                    reservation.grow_to(2 * total).map_err(Error::Budget)?;
                    body.extend_from_slice(&chunk);
                }
                Some(segment_stream_request::Message::Start(_)) | None => {
                    return Err(Error::InvalidArgument(
                        "after start, every message must be a chunk".into(),
                    ));
                }
            }
        }
        if start.total_size_bytes > 0 && body.len() as u64 != start.total_size_bytes {
            return Err(Error::InvalidArgument(format!(
                "the upload declared {} bytes but sent {}",
                start.total_size_bytes,
                body.len()
            )));
        }
        let admission = self.admit()?;
        let done = self
            .run(
                (admission, reservation),
                body.freeze(),
                &start.model_id,
                options,
                start.gzip_output,
                deadline,
            )
            .await?;
        let mut messages: Vec<SegmentStreamResponse> = done
            .encoded
            .chunks(CHUNK)
            .map(|chunk| SegmentStreamResponse {
                message: Some(segment_stream_response::Message::Chunk(chunk.to_vec())),
            })
            .collect();
        messages.push(SegmentStreamResponse {
            message: Some(segment_stream_response::Message::Summary(done.summary)),
        });
        Ok(messages)
    }
}

/// The messages as the stream the RPC returns.
pub fn into_stream(
    messages: Vec<SegmentStreamResponse>,
) -> impl tokio_stream::Stream<Item = Result<SegmentStreamResponse, Status>> {
    tokio_stream::iter(messages.into_iter().map(Ok))
}
