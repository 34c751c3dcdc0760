//! `abdoseg evaluate-model` and `abdoseg report`: model evaluation through the metrics
//! service, with live progress, and the stored reports.

use std::{path::PathBuf, process::ExitCode};

use abdoseg_protos::{
    common::v1::Split,
    metrics::v1::{
        AggregateMetrics, EvaluateModelRequest, GetReportRequest, ListReportsRequest, Report,
        evaluate_model_response::Event, metrics_service_client::MetricsServiceClient,
    },
};
use abdoseg_server::config::{DEFAULT_LISTEN, StoreArgs};
use abdoseg_storage::{Key, Storage};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SplitName {
    Train,
    Validation,
    Test,
}

#[derive(Debug, clap::Args)]
pub struct EvaluateModelArgs {
    /// The prepared dataset whose split is evaluated.
    #[arg(long)]
    dataset: String,
    /// A model id, or `latest`.
    #[arg(long, default_value = "latest")]
    model: String,
    #[arg(long, value_enum, default_value = "test")]
    split: SplitName,
    /// Overlap metrics only: skip HD95 and NSD.
    #[arg(long)]
    no_surface: bool,
    /// Leave the best/worst-slice overlays out of the report.
    #[arg(long)]
    no_overlays: bool,
    /// Cases evaluated at once (0: the service's default).
    #[arg(long, default_value_t = 0)]
    concurrency: u32,
    /// The server's URL.
    #[arg(long, env = "ABDOSEG_URL", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
    url: String,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The report to show; lists the reports when left out.
    report_id: Option<String>,
    /// Copy the report's Markdown, HTML, curves and overlays from the store into this folder.
    #[arg(long, requires = "report_id")]
    out: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
    /// The server's URL.
    #[arg(long, env = "ABDOSEG_URL", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
    url: String,
}

pub async fn client(url: &str) -> anyhow::Result<MetricsServiceClient<Channel>> {
    Ok(MetricsServiceClient::new(super::connect(url).await?).max_decoding_message_size(64 << 20))
}

fn cell(value: f64) -> String {
    if value.is_nan() {
        "—".into()
    } else {
        format!("{value:.2}")
    }
}

/// The study's table: one row, IoU over all voxels of the split.
pub fn print_table(report: &Report) {
    let row = |f: fn(&AggregateMetrics) -> f64| -> Vec<String> {
        report.aggregate.iter().map(|a| cell(f(a))).collect()
    };
    println!("| Model | Background | Liver | Kidneys | Spleen | Pancreas |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| {} (pooled IoU) | {} |",
        report.model_id,
        row(|a| a.pooled_iou).join(" | ")
    );
    let (study, values) = abdoseg_metrics::report::STUDY_BEST;
    let values: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
    println!("| {study} | {} |", values.join(" | "));
    println!("| mean IoU | {} |", row(|a| a.mean_iou).join(" | "));
    println!("| mean Dice | {} |", row(|a| a.mean_dice).join(" | "));
    let optional = |f: fn(&AggregateMetrics) -> Option<f64>| -> Vec<String> {
        report
            .aggregate
            .iter()
            .map(|a| f(a).map_or("—".into(), cell))
            .collect()
    };
    println!(
        "| mean HD95 (mm) | {} |",
        optional(|a| a.mean_hd95_mm).join(" | ")
    );
    println!("| mean NSD | {} |", optional(|a| a.mean_nsd).join(" | "));
}

pub async fn evaluate_model(args: EvaluateModelArgs) -> anyhow::Result<ExitCode> {
    let mut client = client(&args.url).await?;
    let request = EvaluateModelRequest {
        model_id: args.model,
        dataset_id: args.dataset,
        split: match args.split {
            SplitName::Train => Split::Train,
            SplitName::Validation => Split::Validation,
            SplitName::Test => Split::Test,
        } as i32,
        surface_metrics: !args.no_surface,
        concurrency: args.concurrency,
        overlays: !args.no_overlays,
    };
    let (report, failed) = evaluate(&mut client, request).await?;
    print_table(&report);
    println!(
        "\nreport {}: {} cases, {failed} failed; `abdoseg report {} --out DIR` copies it out",
        report.report_id,
        report.cases.len(),
        report.report_id
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs an evaluation with a progress bar; returns the stored report and how many cases
/// failed.
pub async fn evaluate(
    client: &mut MetricsServiceClient<Channel>,
    request: EvaluateModelRequest,
) -> anyhow::Result<(Report, usize)> {
    let mut stream = client.evaluate_model(request).await?.into_inner();
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} cases  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut failed = 0;
    while let Some(event) = stream.message().await? {
        bar.set_length(u64::from(event.cases_total));
        bar.set_position(u64::from(event.cases_done));
        match event.event {
            Some(Event::CaseEvaluated(case)) => {
                let liver = case.classes.get(1).map_or(f64::NAN, |c| c.iou);
                bar.set_message(format!("{}: liver IoU {}", case.case_id, cell(liver)));
            }
            Some(Event::CaseFailed(f)) => {
                failed += 1;
                bar.suspend(|| println!("{} failed: {}", f.case_id, f.reason));
            }
            Some(Event::Report(report)) => {
                bar.finish_and_clear();
                return Ok((report, failed));
            }
            None => {}
        }
    }
    anyhow::bail!("the evaluation ended without a report")
}

pub async fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let mut client = client(&args.url).await?;
    let Some(report_id) = args.report_id else {
        let reports = client
            .list_reports(ListReportsRequest::default())
            .await?
            .into_inner()
            .reports;
        if reports.is_empty() {
            println!("no reports yet (abdoseg evaluate-model --dataset ID)");
        }
        for r in reports {
            let liver = r.aggregate.get(1).map_or(f64::NAN, |a| a.pooled_iou);
            let pancreas = r.aggregate.get(4).map_or(f64::NAN, |a| a.pooled_iou);
            println!(
                "{}  model {}  dataset {}  liver {}  pancreas {}",
                r.report_id,
                r.model_id,
                r.dataset_id,
                cell(liver),
                cell(pancreas)
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let report = client
        .get_report(GetReportRequest { report_id })
        .await?
        .into_inner()
        .report
        .context("the service sent no report")?;
    print_table(&report);
    let Some(out) = args.out else {
        return Ok(ExitCode::SUCCESS);
    };
    let storage =
        Storage::open(&args.store.store_config()?).context("cannot open the object store")?;
    std::fs::create_dir_all(out.join("overlays"))
        .with_context(|| format!("cannot create {}", out.display()))?;
    let prefix = format!("reports/{}/", report.report_id);
    let mut keys: Vec<String> = [report.markdown.as_ref(), report.html.as_ref()]
        .into_iter()
        .flatten()
        .map(|o| o.key.clone())
        .chain(
            report
                .overlays
                .iter()
                .filter_map(|o| o.png.as_ref().map(|p| p.key.clone())),
        )
        .collect();
    keys.extend(["loss.svg", "iou.svg"].map(|f| format!("{prefix}{f}")));
    for key in keys {
        let parsed = Key::parse(&key)?;
        let bytes = match storage.get(&parsed).await {
            Ok(bytes) => bytes,
            // Curves exist only for models with a training history.
            Err(abdoseg_storage::StorageError::NotFound { .. }) if key.ends_with(".svg") => {
                continue;
            }
            Err(error) => return Err(error).with_context(|| format!("cannot read {key}")),
        };
        let relative = key.strip_prefix(&prefix).unwrap_or(&key);
        std::fs::write(out.join(relative), &bytes)
            .with_context(|| format!("cannot write {relative}"))?;
    }
    println!("copied to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// The report of an earlier evaluation of the same model, dataset and split, or a new
/// evaluation's: reruns of quickstart and experiments evaluate nothing twice.
pub async fn find_or_evaluate(
    client: &mut MetricsServiceClient<Channel>,
    request: EvaluateModelRequest,
) -> anyhow::Result<Report> {
    let reports = client
        .list_reports(ListReportsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await?
        .into_inner()
        .reports;
    let earlier = reports.into_iter().find(|r| {
        r.model_id == request.model_id
            && r.dataset_id == request.dataset_id
            && r.split == request.split
    });
    if let Some(report) = earlier {
        println!("evaluated before: report {}", report.report_id);
        return Ok(report);
    }
    Ok(evaluate(client, request).await?.0)
}
