//! The experiment runner on a 2×2 mini-grid (two schemes × two depths) over the real
//! services: four configurations prepared, trained and evaluated into a four-row table in
//! the study's layout; a rerun finds every model and report instead of redoing them.

use abdoseg::experiment::{ExperimentConfig, curves, run, table};
use abdoseg_protos::training::v1::{
    ListJobsRequest, training_service_client::TrainingServiceClient,
};

use crate::{harness::Harness, prepare::put_phantoms};

#[tokio::test(flavor = "multi_thread")]
async fn a_two_by_two_grid_gives_a_four_row_table() {
    let harness = Harness::start().await;
    put_phantoms(&harness.storage, "grid", 6, 21).await;
    let config = ExperimentConfig::parse(
        r#"
        name = "mini"
        source = "raw/grid"
        schemes = ["none", "he"]
        variants = ["unet1"]
        depths = [4, 5]
        size = 32
        epochs = 1
        slices_per_epoch = 8
        base_filters = 4
        batch_size = 4
        surface_metrics = false
        overlays = false
        "#,
    )
    .unwrap();
    let url = harness.stack.url();
    let rows = run(&url, &config).await.unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "unet-1-4-levels-none",
            "unet-1-5-levels-none",
            "unet-1-4-levels-he",
            "unet-1-5-levels-he"
        ]
    );
    let text = table(&rows);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| unet-1-"))
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    for line in &lines {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 6, "{line}");
        for cell in &cells[1..] {
            let value: f64 = cell
                .parse()
                .unwrap_or_else(|_| panic!("{cell:?} in {line}"));
            assert!((0.0..=1.0).contains(&value), "{line}");
        }
    }
    assert!(text.contains("| Model | Background | Liver | Kidneys | Spleen | Pancreas |"));
    assert!(text.contains("| study: unet-1-5-levels | 0.99 | 0.84 | 0.71 | 0.68 | 0.05 |"));
    // Two schemes: two datasets; four distinct models and reports.
    let datasets: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.report.dataset_id.as_str()).collect();
    assert_eq!(datasets.len(), 2);
    let models: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.report.model_id.as_str()).collect();
    assert_eq!(models.len(), 4);

    // One validation curve per configuration, over its one epoch.
    assert!(
        rows.iter()
            .all(|r| r.curve.len() == 1 && r.curve[0].0 == 1.0)
    );
    let svg = curves(&rows).unwrap();
    for row in &rows {
        assert!(
            svg.contains(&format!(">\n{}\n<", row.label)),
            "{} in the legend",
            row.label
        );
    }

    // A rerun trains and evaluates nothing again.
    let again = run(&url, &config).await.unwrap();
    let ids = |rows: &[abdoseg::experiment::Row]| {
        rows.iter()
            .map(|r| r.report.report_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&again), ids(&rows));
    let mut training = TrainingServiceClient::new(harness.channel.clone());
    let jobs = training
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(jobs.len(), 4);
    harness.stack.stop().await.unwrap();
}
