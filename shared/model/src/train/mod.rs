//! Training a U-Net on preprocessed slices: Adam, the configured loss with class weights,
//! foreground oversampling, augmentation, per-epoch loss and per-class IoU/Dice on train
//! and validation, and the best epoch (mean foreground validation IoU) kept.

mod augment;
mod loss;
mod metrics;
mod sampler;

use std::time::Instant;

pub use augment::Augmentation;
pub use loss::{LossKind, loss};
pub use metrics::Overlap;
pub use sampler::Sampler;

use burn::{
    module::AutodiffModule,
    optim::{AdamConfig, GradientsParams, Optimizer, decay::WeightDecayConfig},
    prelude::Backend,
    tensor::{Int, Tensor, TensorData, backend::AutodiffBackend},
};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{NUM_CLASSES, UNet, UNetConfig};

/// One preprocessed slice at model resolution.
#[derive(Debug, Clone)]
pub struct TrainingSlice {
    pub image: Array2<f32>,
    pub labels: Array2<u8>,
}

/// Everything a training run needs besides its data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingConfig {
    pub architecture: crate::Architecture,
    pub depth: usize,
    pub base_filters: usize,
    pub batch_size: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub loss: LossKind,
    /// One weight per class, background first; `None` weighs all classes alike.
    pub class_weights: Option<[f32; NUM_CLASSES]>,
    /// Share of every batch drawn from slices with the rarest organs.
    pub foreground_share: f32,
    pub augmentation: Augmentation,
    pub seed: u64,
    /// Stop after this many epochs without a better validation IoU.
    pub early_stopping_patience: Option<usize>,
}

impl TrainingConfig {
    pub fn model(&self) -> UNetConfig {
        UNetConfig::new(self.architecture)
            .with_depth(self.depth)
            .with_base_filters(self.base_filters)
    }
}

/// What one epoch measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub validation_loss: f64,
    pub train: Overlap,
    pub validation: Overlap,
    pub seconds: f64,
}

/// Whether to go on after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// The outcome of a run: the best model (inference backend), its epoch and the history.
#[derive(Debug)]
pub struct Trained<B: Backend> {
    pub model: UNet<B>,
    pub best_epoch: usize,
    pub history: Vec<EpochReport>,
}

fn batch_tensors<B: Backend>(
    slices: &[TrainingSlice],
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 3, Int>) {
    let (h, w) = slices[0].image.dim();
    let mut images = Vec::with_capacity(slices.len() * h * w);
    let mut labels = Vec::with_capacity(slices.len() * h * w);
    for s in slices {
        images.extend(s.image.iter().copied());
        labels.extend(s.labels.iter().map(|&l| i64::from(l)));
    }
    let n = slices.len();
    (
        Tensor::from_data(TensorData::new(images, [n, 1, h, w]), device),
        Tensor::from_data(TensorData::new(labels, [n, h, w]), device),
    )
}

fn predicted_labels<B: Backend>(logits: Tensor<B, 4>) -> Vec<u8> {
    let [n, _, h, w] = logits.dims();
    logits
        .argmax(1)
        .reshape([n * h * w])
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .unwrap_or_default()
        .into_iter()
        .map(|v| v as u8)
        .collect()
}

fn class_weights<B: Backend>(config: &TrainingConfig, device: &B::Device) -> Tensor<B, 1> {
    let weights = config.class_weights.unwrap_or([1.0; NUM_CLASSES]);
    Tensor::from_data(TensorData::new(weights.to_vec(), [NUM_CLASSES]), device)
}

/// Loss and overlap of a model on slices, without gradients.
pub fn evaluate<B: Backend>(
    model: &UNet<B>,
    slices: &[TrainingSlice],
    config: &TrainingConfig,
    device: &B::Device,
) -> (f64, Overlap) {
    let mut overlap = Overlap::default();
    let mut total = 0.0;
    let mut batches = 0;
    for chunk in slices.chunks(config.batch_size.max(1)) {
        let (images, labels) = batch_tensors::<B>(chunk, device);
        let truth: Vec<u8> = chunk
            .iter()
            .flat_map(|s| s.labels.iter().copied())
            .collect();
        let logits = model.logits(images);
        let batch_loss = loss(
            config.loss,
            logits.clone(),
            labels,
            class_weights(config, device),
        );
        total += f64::from(batch_loss.into_scalar().elem::<f32>());
        batches += 1;
        overlap.add(&predicted_labels(logits), &truth);
    }
    (total / f64::from(batches.max(1)), overlap)
}

use burn::tensor::ElementConversion as _;

/// Trains from scratch. `on_epoch` sees every epoch's report and the current model and
/// may stop the run (cancellation, a deadline); `on_batch` sees batch progress.
pub fn train<B: AutodiffBackend>(
    config: &TrainingConfig,
    train_slices: &[TrainingSlice],
    validation_slices: &[TrainingSlice],
    device: &B::Device,
    mut on_batch: impl FnMut(usize, usize, usize, f64),
    mut on_epoch: impl FnMut(&EpochReport, &UNet<B::InnerBackend>) -> Control,
) -> Result<Trained<B::InnerBackend>, String> {
    let model_config = config.model();
    model_config.validate()?;
    if train_slices.is_empty() {
        return Err("no training slices".into());
    }
    let (h, w) = train_slices[0].image.dim();
    let multiple = model_config.size_multiple();
    if h % multiple != 0 || w % multiple != 0 {
        return Err(format!(
            "slices of {h}×{w} do not fit depth {}: sides must be multiples of {multiple}",
            config.depth
        ));
    }
    B::seed(device, config.seed);
    let mut model: UNet<B> = model_config.init(device);
    let mut optimizer = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(
            (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32)),
        )
        .init();
    let counts: Vec<[u64; NUM_CLASSES]> = train_slices
        .iter()
        .map(|s| {
            let mut c = [0u64; NUM_CLASSES];
            for &l in s.labels.iter() {
                c[usize::from(l).min(NUM_CLASSES - 1)] += 1;
            }
            c
        })
        .collect();
    let mut sampler = Sampler::new(&counts, config.foreground_share, config.seed);
    let mut augment_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xA5A5);
    let weights = class_weights::<B>(config, device);

    let mut history = Vec::new();
    let mut best: Option<(f64, usize, UNet<B::InnerBackend>)> = None;
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        let batches = sampler.epoch(config.batch_size);
        let mut train_overlap = Overlap::default();
        let mut train_loss = 0.0;
        for (index, batch) in batches.iter().enumerate() {
            let slices: Vec<TrainingSlice> = batch
                .iter()
                .map(|&i| {
                    let s = &train_slices[i];
                    let (image, labels) =
                        config
                            .augmentation
                            .apply(&s.image, &s.labels, &mut augment_rng);
                    TrainingSlice { image, labels }
                })
                .collect();
            let truth: Vec<u8> = slices
                .iter()
                .flat_map(|s| s.labels.iter().copied())
                .collect();
            let (images, labels) = batch_tensors::<B>(&slices, device);
            let logits = model.logits(images);
            train_overlap.add(&predicted_labels(logits.clone()), &truth);
            let batch_loss = loss(config.loss, logits, labels, weights.clone());
            let value = f64::from(batch_loss.clone().into_scalar().elem::<f32>());
            train_loss += value;
            let grads = GradientsParams::from_grads(batch_loss.backward(), &model);
            model = optimizer.step(config.learning_rate, model, grads);
            on_batch(epoch, index + 1, batches.len(), value);
        }
        let inference = model.valid();
        let (validation_loss, validation) = evaluate(&inference, validation_slices, config, device);
        let report = EpochReport {
            epoch,
            train_loss: train_loss / batches.len().max(1) as f64,
            validation_loss,
            train: train_overlap,
            validation,
            seconds: started.elapsed().as_secs_f64(),
        };
        let score = report.validation.mean_foreground_iou();
        let improved = best.as_ref().is_none_or(|(s, _, _)| score > *s);
        if improved {
            best = Some((score, epoch, inference.clone()));
        }
        let control = on_epoch(&report, &inference);
        history.push(report);
        let stale = best.as_ref().map_or(0, |(_, e, _)| epoch - e);
        if control == Control::Stop || config.early_stopping_patience.is_some_and(|p| stale >= p) {
            break;
        }
    }
    let (_, best_epoch, model) = best.ok_or("no epoch ran")?;
    Ok(Trained {
        model,
        best_epoch,
        history,
    })
}
