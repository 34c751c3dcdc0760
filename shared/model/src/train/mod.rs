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
    optim::{
        Adam, AdamConfig, GradientsParams, Optimizer, adaptor::OptimizerAdaptor,
        decay::WeightDecayConfig,
    },
    prelude::Backend,
    record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder},
    tensor::{ElementConversion as _, Int, Tensor, TensorData, backend::AutodiffBackend},
};
use ndarray::{Array2, Array3};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{NUM_CLASSES, UNet, UNetConfig};

/// One preprocessed slice at model resolution.
#[derive(Debug, Clone)]
pub struct TrainingSlice {
    /// The model's input: `(channels, height, width)`, one channel per slice of the
    /// job's [`crate::SliceContext`].
    pub image: Array3<f32>,
    pub labels: Array2<u8>,
}

/// Everything a training run needs besides its data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingConfig {
    pub architecture: crate::Architecture,
    /// What follows each 3×3 conv; older records without it mean none.
    #[serde(default = "no_normalization")]
    pub normalization: crate::Normalization,
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
    /// Slices drawn per epoch; `None` draws as many as the training split holds.
    #[serde(default)]
    pub slices_per_epoch: Option<usize>,
    /// 2.5D input: neighbouring slices as channels; older records without it are 2D.
    #[serde(default)]
    pub context: crate::SliceContext,
}

fn no_normalization() -> crate::Normalization {
    crate::Normalization::None
}

impl TrainingConfig {
    pub fn model(&self) -> UNetConfig {
        UNetConfig::new(self.architecture)
            .with_depth(self.depth)
            .with_base_filters(self.base_filters)
            .with_normalization(self.normalization)
            .with_in_channels(self.context.slices)
    }

    /// Most slices one epoch may draw: the sampler holds one index per draw.
    pub const MAX_SLICES_PER_EPOCH: usize = 1_000_000;

    /// An upper estimate of the memory one training step takes on `height`×`width`
    /// slices, in bytes: every level's activations kept for the backward pass (about 16
    /// tensors of the level's size: two convs with their normalization and ReLU in the
    /// encoder and decoder, the skip, the up-convolution, the concatenation) and their
    /// gradients, per slice of the batch; the weights, gradients and Adam's two moments;
    /// the epoch's draws.
    pub fn peak_bytes(&self, height: usize, width: usize) -> u64 {
        const KEPT_PER_LEVEL: u64 = 16;
        let model = self.model();
        let level_floats: u64 = (0..self.depth.min(16))
            .map(|level| {
                let channels = (self.base_filters << level).min(model.max_filters.max(1)) as u64;
                let pixels = ((height >> level) * (width >> level)) as u64;
                channels * pixels
            })
            .sum();
        let activations = (self.batch_size as u64)
            .saturating_mul(level_floats)
            .saturating_mul(KEPT_PER_LEVEL * 2 * 4);
        // Parameters: at most 9·c² per conv, a handful of convs per level.
        let parameters: u64 = (0..self.depth.min(16))
            .map(|level| {
                let c = (self.base_filters << level).min(model.max_filters.max(1)) as u64;
                8 * 9 * c * c
            })
            .sum();
        let draws = self.slices_per_epoch.unwrap_or(0) as u64 * 8;
        activations
            .saturating_add(parameters.saturating_mul(4 * 4))
            .saturating_add(draws)
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
    /// Overlap on real cases scored beside the validation split (never used to choose
    /// the best epoch), when the job names some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_validation: Option<Overlap>,
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
    let (c, h, w) = slices[0].image.dim();
    let mut images = Vec::with_capacity(slices.len() * c * h * w);
    let mut labels = Vec::with_capacity(slices.len() * h * w);
    for s in slices {
        images.extend(s.image.iter().copied());
        labels.extend(s.labels.iter().map(|&l| i64::from(l)));
    }
    let n = slices.len();
    (
        Tensor::from_data(TensorData::new(images, [n, c, h, w]), device),
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

/// What a checkpoint holds besides the epoch count: the model's and the optimizer's state.
/// The random streams need no bytes of their own: every epoch's sampler and augmentation
/// RNGs are seeded from the run's seed and the epoch number, so `epochs_done` fixes them.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub epochs_done: usize,
    pub model: Vec<u8>,
    pub optimizer: Vec<u8>,
}

/// Seed of one epoch's random stream: distinct per run, per epoch and per purpose.
fn epoch_seed(seed: u64, epoch: usize, stream: u64) -> u64 {
    let mut x = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream;
    // splitmix64 finaliser, so that neighbouring epochs get unrelated streams.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const SAMPLER_STREAM: u64 = 0x5A4D_504C;
const AUGMENT_STREAM: u64 = 0xA5A5_A5A5;

type Adaptor<B> = OptimizerAdaptor<Adam, UNet<B>, B>;
type Bytes = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// A run in progress, one epoch at a time, that can be checkpointed and restored.
pub struct Trainer<B: AutodiffBackend> {
    config: TrainingConfig,
    device: B::Device,
    model: UNet<B>,
    optimizer: Adaptor<B>,
    weights: Tensor<B, 1>,
    class_voxels: Vec<[u64; NUM_CLASSES]>,
    epochs_done: usize,
}

impl<B: AutodiffBackend> std::fmt::Debug for Trainer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("config", &self.config)
            .field("epochs_done", &self.epochs_done)
            .finish_non_exhaustive()
    }
}

impl<B: AutodiffBackend> Trainer<B> {
    /// A fresh model for `config`, checked against the training slices' size.
    pub fn new(
        config: &TrainingConfig,
        train_slices: &[TrainingSlice],
        device: &B::Device,
    ) -> Result<Self, String> {
        let model_config = config.model();
        model_config.validate()?;
        let Some(first) = train_slices.first() else {
            return Err("no training slices".into());
        };
        let (channels, h, w) = first.image.dim();
        if channels != model_config.in_channels {
            return Err(format!(
                "slices of {channels} channels for a model of {} input channels",
                model_config.in_channels
            ));
        }
        let multiple = model_config.size_multiple();
        if h % multiple != 0 || w % multiple != 0 {
            return Err(format!(
                "slices of {h}×{w} do not fit depth {}: sides must be multiples of {multiple}",
                config.depth
            ));
        }
        if config.batch_size == 0 {
            return Err("batch size must be at least 1".into());
        }
        B::seed(device, config.seed);
        let model: UNet<B> = model_config.init(device);
        let optimizer = AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(
                (config.weight_decay > 0.0)
                    .then(|| WeightDecayConfig::new(config.weight_decay as f32)),
            )
            .init();
        let class_voxels = train_slices
            .iter()
            .map(|s| {
                let mut c = [0u64; NUM_CLASSES];
                for &l in s.labels.iter() {
                    c[usize::from(l).min(NUM_CLASSES - 1)] += 1;
                }
                c
            })
            .collect();
        Ok(Self {
            config: config.clone(),
            device: device.clone(),
            model,
            optimizer,
            weights: class_weights::<B>(config, device),
            class_voxels,
            epochs_done: 0,
        })
    }

    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// The current model, for inference.
    pub fn model(&self) -> UNet<B::InnerBackend> {
        self.model.valid()
    }

    /// Runs the next epoch and measures it. `cancelled` is asked between batches: when it
    /// says yes the epoch is abandoned (`None`); `epochs_done` is unchanged but the weights
    /// hold the abandoned epoch's partial updates, so resume from the last checkpoint.
    pub fn run_epoch(
        &mut self,
        train_slices: &[TrainingSlice],
        validation_slices: &[TrainingSlice],
        mut on_batch: impl FnMut(usize, usize, f64),
        cancelled: impl Fn() -> bool,
    ) -> Option<EpochReport> {
        let config = &self.config;
        let epoch = self.epochs_done + 1;
        let started = Instant::now();
        let mut sampler = Sampler::new(
            &self.class_voxels,
            config.foreground_share,
            epoch_seed(config.seed, epoch, SAMPLER_STREAM),
        );
        let mut augment_rng =
            ChaCha8Rng::seed_from_u64(epoch_seed(config.seed, epoch, AUGMENT_STREAM));
        let batches = sampler.epoch(config.batch_size, config.slices_per_epoch);
        let mut train_overlap = Overlap::default();
        let mut train_loss = 0.0;
        for (index, batch) in batches.iter().enumerate() {
            if cancelled() {
                return None;
            }
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
            let (images, labels) = batch_tensors::<B>(&slices, &self.device);
            let logits = self.model.logits(images);
            train_overlap.add(&predicted_labels(logits.clone()), &truth);
            let batch_loss = loss(config.loss, logits, labels, self.weights.clone());
            let value = f64::from(batch_loss.clone().into_scalar().elem::<f32>());
            train_loss += value;
            let grads = GradientsParams::from_grads(batch_loss.backward(), &self.model);
            let model = self.model.clone();
            self.model = self.optimizer.step(config.learning_rate, model, grads);
            on_batch(index + 1, batches.len(), value);
        }
        let (validation_loss, validation) =
            evaluate(&self.model.valid(), validation_slices, config, &self.device);
        self.epochs_done = epoch;
        Some(EpochReport {
            epoch,
            train_loss: train_loss / batches.len().max(1) as f64,
            validation_loss,
            train: train_overlap,
            validation,
            seconds: started.elapsed().as_secs_f64(),
            real_validation: None,
        })
    }

    /// The model's and optimizer's state after the last epoch.
    pub fn checkpoint(&self) -> Result<Checkpoint, String> {
        let optimizer = Bytes::default()
            .record(self.optimizer.to_record(), ())
            .map_err(|e| format!("cannot encode the optimizer state: {e}"))?;
        Ok(Checkpoint {
            epochs_done: self.epochs_done,
            model: crate::weights::encode(&self.model)?,
            optimizer,
        })
    }

    /// Continues from a checkpoint of a run with the same configuration.
    pub fn restore(&mut self, checkpoint: &Checkpoint) -> Result<(), String> {
        let model = crate::weights::decode(self.model.clone(), &checkpoint.model, &self.device)?;
        let record = Recorder::<B>::load(
            &Bytes::default(),
            checkpoint.optimizer.clone(),
            &self.device,
        )
        .map_err(|e| format!("the optimizer state cannot be read: {e}"))?;
        let optimizer = std::mem::replace(&mut self.optimizer, AdamConfig::new().init());
        self.optimizer = optimizer.load_record(record);
        self.model = model;
        self.epochs_done = checkpoint.epochs_done;
        Ok(())
    }
}

/// Trains from scratch in one go. `on_epoch` sees every epoch's report and the current
/// model and may stop the run; `on_batch` sees (epoch, batch, batches, loss).
pub fn train<B: AutodiffBackend>(
    config: &TrainingConfig,
    train_slices: &[TrainingSlice],
    validation_slices: &[TrainingSlice],
    device: &B::Device,
    mut on_batch: impl FnMut(usize, usize, usize, f64),
    mut on_epoch: impl FnMut(&EpochReport, &UNet<B::InnerBackend>) -> Control,
) -> Result<Trained<B::InnerBackend>, String> {
    let mut trainer = Trainer::<B>::new(config, train_slices, device)?;
    let mut history: Vec<EpochReport> = Vec::new();
    let mut best: Option<(usize, UNet<B::InnerBackend>)> = None;
    while trainer.epochs_done() < config.epochs {
        let epoch = trainer.epochs_done() + 1;
        let report = trainer
            .run_epoch(
                train_slices,
                validation_slices,
                |batch, total, value| on_batch(epoch, batch, total, value),
                || false,
            )
            .ok_or("the epoch was abandoned")?;
        let model = trainer.model();
        history.push(report);
        let best_epoch = best_epoch(&history).unwrap_or(epoch);
        if best_epoch == epoch {
            best = Some((epoch, model.clone()));
        }
        let Some(report) = history.last() else { break };
        if on_epoch(report, &model) == Control::Stop || should_stop(config, &history) {
            break;
        }
    }
    let (best_epoch, model) = best.ok_or("no epoch ran")?;
    Ok(Trained {
        model,
        best_epoch,
        history,
    })
}

/// The epoch with the best mean foreground validation IoU (the first, on ties).
pub fn best_epoch(history: &[EpochReport]) -> Option<usize> {
    let mut best: Option<&EpochReport> = None;
    for report in history {
        if best.is_none_or(|b| {
            report.validation.mean_foreground_iou() > b.validation.mean_foreground_iou()
        }) {
            best = Some(report);
        }
    }
    best.map(|r| r.epoch)
}

/// Whether the run is over: every epoch done, or no better epoch for `patience` epochs.
pub fn should_stop(config: &TrainingConfig, history: &[EpochReport]) -> bool {
    let done = history.last().map_or(0, |r| r.epoch);
    let stale = best_epoch(history).map_or(0, |best| done - best);
    done >= config.epochs
        || config
            .early_stopping_patience
            .is_some_and(|p| p > 0 && stale >= p)
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    fn config(base_filters: usize, batch_size: usize) -> TrainingConfig {
        TrainingConfig {
            architecture: crate::Architecture::Unet1,
            normalization: crate::Normalization::Instance,
            depth: 5,
            base_filters,
            batch_size,
            epochs: 1,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            loss: LossKind::CeDice,
            class_weights: None,
            foreground_share: 0.0,
            augmentation: Augmentation::none(),
            seed: 0,
            early_stopping_patience: None,
            slices_per_epoch: None,
            context: crate::SliceContext::TWO_D,
        }
    }

    #[test]
    fn the_estimate_grows_with_batch_filters_and_size_and_tells_sane_from_absurd() {
        let quickstart = config(16, 30).peak_bytes(96, 96);
        assert!(quickstart < 2 << 30, "{quickstart}");
        assert!(config(16, 60).peak_bytes(96, 96) > quickstart);
        assert!(config(32, 30).peak_bytes(96, 96) > quickstart);
        assert!(config(16, 30).peak_bytes(192, 192) > 3 * quickstart);
        // The study's setting at 256² fits a few GiB; base 256 × batch 1024 at 512² is
        // terabytes.
        assert!(config(16, 30).peak_bytes(256, 256) < 8 << 30);
        assert!(config(256, 1024).peak_bytes(512, 512) > 1 << 40);
    }
}
