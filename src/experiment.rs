//! The study's grid: every combination of intensity scheme, U-Net variant and depth,
//! prepared, trained and evaluated through the services, into one comparison table in
//! the layout of the study's Table 1 (one row per configuration). Each configuration's
//! report keeps its curves and overlays; a rerun finds the datasets, jobs and reports an
//! earlier run left.

use abdoseg_protos::{
    common::v1::{Device, IntensityScheme, PreprocessingConfig, Split},
    metrics::v1::{EvaluateModelRequest, Report},
    training::v1::{Architecture, ClassWeighting, GetModelRequest, Normalization, TrainingConfig},
};
use anyhow::Context;
use serde::Deserialize;

use crate::cli::{dataset, report, train};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemeName {
    None,
    He,
    Clahe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Unet1,
    Unet2,
}

fn default_size() -> u32 {
    128
}
fn default_epochs() -> u32 {
    8
}
fn default_slices() -> u32 {
    400
}
fn default_base() -> u32 {
    8
}
fn default_batch() -> u32 {
    16
}
fn default_lr() -> f64 {
    3e-3
}

/// An experiment file (TOML), e.g.
///
/// ```toml
/// name = "study-grid"
/// source = "raw/phantoms-full"      # a raw dataset in the store
/// schemes = ["none", "he", "clahe"]
/// variants = ["unet1", "unet2"]
/// depths = [5, 6, 7]
/// epochs = 8                     # the rest have defaults sized for a CPU
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    pub name: String,
    pub source: String,
    pub schemes: Vec<SchemeName>,
    pub variants: Vec<Variant>,
    pub depths: Vec<u32>,
    #[serde(default = "default_size")]
    pub size: u32,
    /// The model's pixel size in mm (physical scale); 0 stretches slices to `size`.
    #[serde(default)]
    pub pixel_size_mm: f32,
    #[serde(default = "default_epochs")]
    pub epochs: u32,
    #[serde(default = "default_slices")]
    pub slices_per_epoch: u32,
    #[serde(default = "default_base")]
    pub base_filters: u32,
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    #[serde(default)]
    pub seed: u64,
    /// Surface metrics (HD95, NSD) and overlays in each report.
    #[serde(default = "default_true")]
    pub surface_metrics: bool,
    #[serde(default = "default_true")]
    pub overlays: bool,
}

fn default_true() -> bool {
    true
}

impl ExperimentConfig {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text).context("invalid experiment file")?;
        anyhow::ensure!(
            !config.schemes.is_empty() && !config.variants.is_empty() && !config.depths.is_empty(),
            "schemes, variants and depths each need at least one value"
        );
        Ok(config)
    }

    /// The configurations of the grid, in the study's order.
    pub fn grid(&self) -> Vec<(SchemeName, Variant, u32)> {
        let mut grid = Vec::new();
        for &scheme in &self.schemes {
            for &variant in &self.variants {
                for &depth in &self.depths {
                    grid.push((scheme, variant, depth));
                }
            }
        }
        grid
    }
}

/// The study's model name, with the scheme: `unet-1-5-levels-he`.
pub fn label(scheme: SchemeName, variant: Variant, depth: u32) -> String {
    let v = match variant {
        Variant::Unet1 => 1,
        Variant::Unet2 => 2,
    };
    let s = match scheme {
        SchemeName::None => "none",
        SchemeName::He => "he",
        SchemeName::Clahe => "clahe",
    };
    format!("unet-{v}-{depth}-levels-{s}")
}

/// One configuration's outcome.
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub report: Report,
    /// (epoch, mean organ validation IoU) of its training.
    pub curve: Vec<(f64, f64)>,
}

fn preprocessing(config: &ExperimentConfig, scheme: SchemeName) -> PreprocessingConfig {
    PreprocessingConfig {
        scheme: match scheme {
            SchemeName::None => IntensityScheme::None,
            SchemeName::He => IntensityScheme::He,
            SchemeName::Clahe => IntensityScheme::Clahe,
        } as i32,
        slice_width: config.size,
        slice_height: config.size,
        target_spacing_mm: config.pixel_size_mm,
        ..PreprocessingConfig::default()
    }
}

fn training(
    config: &ExperimentConfig,
    dataset_id: &str,
    name: &str,
    variant: Variant,
    depth: u32,
) -> TrainingConfig {
    TrainingConfig {
        dataset_id: dataset_id.to_owned(),
        name: name.to_owned(),
        architecture: match variant {
            Variant::Unet1 => Architecture::Unet1,
            Variant::Unet2 => Architecture::Unet2,
        } as i32,
        depth,
        base_filters: config.base_filters,
        batch_size: config.batch_size,
        epochs: config.epochs,
        slices_per_epoch: config.slices_per_epoch,
        learning_rate: config.learning_rate,
        class_weighting: ClassWeighting::InverseSqrtFrequency as i32,
        foreground_oversampling: 0.5,
        normalization: Normalization::Instance as i32,
        device: Device::Auto as i32,
        seed: config.seed,
        ..TrainingConfig::default()
    }
}

/// Trains one configuration, or finds the model an earlier run trained.
async fn model_for(url: &str, config: TrainingConfig) -> anyhow::Result<String> {
    let mut client = train::client(url).await?;
    let (name, dataset) = (config.name.clone(), config.dataset_id.clone());
    let same = |c: &TrainingConfig| c.name == name && c.dataset_id == dataset;
    train::find_or_train(&mut client, config, same)
        .await?
        .context("the training job did not finish")
}

/// Runs every configuration of the grid against the services at `url`.
pub async fn run(url: &str, config: &ExperimentConfig) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut preprocessing_client = dataset::client(url).await?;
    let mut metrics = report::client(url).await?;
    for scheme in config.schemes.iter().copied() {
        let dataset_id = dataset::prepare_dataset(
            &mut preprocessing_client,
            config.source.clone(),
            preprocessing(config, scheme),
            config.seed,
        )
        .await?;
        for (_, variant, depth) in config.grid().into_iter().filter(|g| g.0 == scheme) {
            let label = label(scheme, variant, depth);
            println!("\n{label}: dataset {dataset_id}");
            let job_name = format!("{}-{label}", config.name);
            let model_id = model_for(
                url,
                training(config, &dataset_id, &job_name, variant, depth),
            )
            .await?;
            let request = EvaluateModelRequest {
                model_id,
                dataset_id: dataset_id.clone(),
                split: Split::Test as i32,
                surface_metrics: config.surface_metrics,
                concurrency: 2,
                overlays: config.overlays,
            };
            let report = report::find_or_evaluate(&mut metrics, request).await?;
            let model = train::client(url)
                .await?
                .get_model(GetModelRequest {
                    model_id: report.model_id.clone(),
                })
                .await?
                .into_inner()
                .model
                .context("the training service returned no model")?;
            let curve = model
                .history
                .iter()
                .map(|m| (f64::from(m.epoch), m.mean_foreground_validation_iou))
                .collect();
            rows.push(Row {
                label,
                report,
                curve,
            });
        }
    }
    Ok(rows)
}

fn cell(value: f64) -> String {
    if value.is_nan() {
        "—".into()
    } else {
        format!("{value:.2}")
    }
}

/// The study's Table 1: one row per configuration, IoU over all voxels of the test
/// split, then the study's own best row; and the reports behind the rows.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| Model | Background | Liver | Kidneys | Spleen | Pancreas |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let cells: Vec<String> = row
            .report
            .aggregate
            .iter()
            .map(|a| cell(a.pooled_iou))
            .collect();
        out.push_str(&format!("| {} | {} |\n", row.label, cells.join(" | ")));
    }
    let (study, values) = abdoseg_metrics::report::STUDY_BEST;
    let values: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
    out.push_str(&format!(
        "| {study} | {} |\n\nReports (curves, overlays, per-case metrics):\n\n",
        values.join(" | ")
    ));
    for row in rows {
        out.push_str(&format!("- {}: {}\n", row.label, row.report.report_id));
    }
    out
}

/// Every configuration's mean organ validation IoU per epoch, as one SVG chart.
pub fn curves(rows: &[Row]) -> Option<String> {
    let series: Vec<(String, Vec<(f64, f64)>)> = rows
        .iter()
        .map(|r| (r.label.clone(), r.curve.clone()))
        .collect();
    abdoseg_metrics::report::epoch_chart("Mean organ validation IoU per epoch", "IoU", &series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_is_every_combination_in_order() {
        let config = ExperimentConfig::parse(
            r#"
            name = "g"
            source = "raw/x"
            schemes = ["he", "clahe"]
            variants = ["unet1", "unet2"]
            depths = [5, 6]
            "#,
        )
        .unwrap();
        let grid = config.grid();
        assert_eq!(grid.len(), 8);
        assert_eq!(grid[0], (SchemeName::He, Variant::Unet1, 5));
        assert_eq!(grid[7], (SchemeName::Clahe, Variant::Unet2, 6));
        assert_eq!(
            label(SchemeName::He, Variant::Unet1, 5),
            "unet-1-5-levels-he"
        );
        assert_eq!((config.size, config.epochs), (128, 8));
        assert!(
            ExperimentConfig::parse(
                "name = 'g'\nsource = 'x'\nschemes = []\nvariants = ['unet1']\ndepths = [5]"
            )
            .is_err()
        );
        assert!(
            ExperimentConfig::parse(
                "name = 'g'\nsource = 'x'\nschemes = ['he']\nvariants = ['unet3']\ndepths = [5]"
            )
            .is_err()
        );
        assert!(ExperimentConfig::parse("name = 'g'\nsource = 'x'\nschemes = ['he']\nvariants = ['unet1']\ndepths = [5]\ntypo = 1").is_err());
    }

    #[test]
    fn every_scheme_asks_for_a_preprocessing_the_service_accepts() {
        let config = ExperimentConfig::parse(
            "name = 'g'\nsource = 'x'\nschemes = ['clahe']\nvariants = ['unet1']\ndepths = [5]",
        )
        .unwrap();
        for scheme in [SchemeName::None, SchemeName::He, SchemeName::Clahe] {
            let wire = preprocessing(&config, scheme);
            let parsed = abdoseg_dataset::proto::preprocessing_from_proto(Some(wire))
                .and_then(|c| c.validate());
            assert!(parsed.is_ok(), "{scheme:?}: {parsed:?}");
        }
    }
}
