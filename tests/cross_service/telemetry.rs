//! Traces leave the process over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and a
//! caller's W3C trace context becomes the parent of the server's span.

use std::{process::Command, time::Duration};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, metadata::MetadataValue};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::harness::spawn_binary;

/// A real OTLP/gRPC trace collector that hands every export to the test.
struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let _ = self.0.send(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn spans_are_exported_over_otlp_with_the_callers_trace() {
    let (sender, mut exports) = mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(sender)))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let (mut server, url) = spawn_binary(
        &["serve", "all", "--store", "memory://"],
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{collector_addr}"),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ],
    );
    let channel = tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let mut request = Request::new(HealthCheckRequest::default());
    request.metadata_mut().insert(
        "traceparent",
        MetadataValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    health.check(request).await.unwrap();

    // SIGTERM: the server drains and flushes its spans on the way out.
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "server exited with {exit}");

    let mut found = false;
    while let Ok(Some(export)) = tokio::time::timeout(Duration::from_secs(10), exports.recv()).await
    {
        for resource_spans in &export.resource_spans {
            let service_name = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref());
            assert!(
                matches!(service_name, Some(Value::StringValue(name)) if name == "abdoseg"),
                "{service_name:?}"
            );
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                let method = span.attributes.iter().find(|kv| kv.key == "rpc.method");
                let is_check = matches!(
                    method.and_then(|kv| kv.value.as_ref()?.value.as_ref()),
                    Some(Value::StringValue(m)) if m == "/grpc.health.v1.Health/Check"
                );
                if is_check {
                    assert_eq!(
                        hex(&span.trace_id),
                        TRACE_ID,
                        "the caller's trace is the parent"
                    );
                    found = true;
                }
            }
        }
        if found {
            break;
        }
    }
    assert!(found, "no span for the health check reached the collector");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
