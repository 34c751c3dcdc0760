//! The answers a host gives to rejected requests: one warn line per rejection (method,
//! code, reason; no patient data ever reaches a status message), and the one code gRPC
//! names for a message over the size limit — RESOURCE_EXHAUSTED — where tonic answers
//! OUT_OF_RANGE.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http_body_util::BodyExt;
use tonic::{
    Code, Status,
    body::Body,
    codegen::http::{HeaderMap, HeaderValue, Request, Response},
};
use tower_layer::Layer;
use tower_service::Service;

/// Wraps every route of a host.
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectionLayer;

impl<S> Layer<S> for RejectionLayer {
    type Service = Rejections<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Rejections { inner }
    }
}

/// The service [`RejectionLayer`] builds.
#[derive(Debug, Clone)]
pub struct Rejections<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<Request<Body>> for Rejections<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let (mut parts, body) = response.into_parts();
            // An error before any message comes in the headers ("trailers only").
            settle(&mut parts.headers, &method);
            let body = body.map_frame(move |mut frame| {
                if let Some(trailers) = frame.trailers_mut() {
                    settle(trailers, &method);
                }
                frame
            });
            Ok(Response::from_parts(parts, Body::new(body)))
        })
    }
}

/// Whether a status is tonic's answer to a message over the size limit.
fn is_oversized(status: &Status) -> bool {
    status.code() == Code::OutOfRange && status.message().contains("message length too large")
}

/// Rewrites an oversized-message status and logs every rejection.
fn settle(headers: &mut HeaderMap, method: &str) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    if status.code() == Code::Ok {
        return;
    }
    let code = if is_oversized(&status) {
        headers.insert(
            "grpc-status",
            HeaderValue::from(Code::ResourceExhausted as i32),
        );
        Code::ResourceExhausted
    } else {
        status.code()
    };
    match code {
        // Faults of ours are logged in full where they happen.
        Code::Internal | Code::Unknown | Code::DataLoss => {}
        Code::Ok
        | Code::Cancelled
        | Code::InvalidArgument
        | Code::DeadlineExceeded
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::ResourceExhausted
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::Unavailable
        | Code::Unauthenticated => {
            tracing::warn!(%method, code = ?code, reason = %status.message(), "request rejected");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_of(status: &Status) -> HeaderMap {
        let mut headers = HeaderMap::new();
        status.add_header(&mut headers).unwrap();
        headers
    }

    #[test]
    fn oversized_messages_answer_resource_exhausted() {
        let mut headers = headers_of(&Status::out_of_range(
            "Error, decoded message length too large: found 20000000 bytes, the limit is: 16777216 bytes",
        ));
        settle(
            &mut headers,
            "/abdoseg.inference.v1.InferenceService/Segment",
        );
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("too large"));
    }

    #[test]
    fn other_codes_are_left_alone() {
        for status in [
            Status::out_of_range("page past the end"),
            Status::invalid_argument("bad"),
            Status::ok(""),
        ] {
            let mut headers = headers_of(&status);
            settle(&mut headers, "/x/Y");
            assert_eq!(
                Status::from_header_map(&headers).map(|s| s.code()),
                Some(status.code())
            );
        }
        let mut empty = HeaderMap::new();
        settle(&mut empty, "/x/Y");
        assert!(empty.is_empty());
    }
}
