//! Losses for segmentation with severe class imbalance: weighted cross-entropy, soft
//! Dice over the classes, or both (the default).

use burn::tensor::{Int, Tensor, activation::log_softmax, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::NUM_CLASSES;

/// Which loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    CeDice,
    CrossEntropy,
    Dice,
}

/// One-hot targets `[batch, classes, h, w]` from labels `[batch, h, w]`.
pub fn one_hot<B: Backend>(labels: Tensor<B, 3, Int>) -> Tensor<B, 4> {
    let hot: Tensor<B, 4, Int> = labels.one_hot(NUM_CLASSES); // [b, h, w, c]
    hot.float().permute([0, 3, 1, 2])
}

/// Cross-entropy from logits, each pixel weighted by its true class's weight.
pub fn cross_entropy<B: Backend>(
    logits: Tensor<B, 4>,
    targets: Tensor<B, 4>,
    weights: Tensor<B, 1>,
) -> Tensor<B, 1> {
    let weights = weights.reshape([1, NUM_CLASSES, 1, 1]);
    let log_p = log_softmax(logits, 1);
    let weighted_targets = targets * weights;
    let numerator = (log_p * weighted_targets.clone()).sum().neg();
    numerator / weighted_targets.sum().clamp_min(1e-6)
}

/// Soft Dice loss over all classes (1 − mean Dice), computed over the whole batch.
pub fn soft_dice<B: Backend>(probabilities: Tensor<B, 4>, targets: Tensor<B, 4>) -> Tensor<B, 1> {
    let intersection = (probabilities.clone() * targets.clone()).sum_dims(&[0, 2, 3]);
    let total = probabilities.sum_dims(&[0, 2, 3]) + targets.sum_dims(&[0, 2, 3]);
    let dice = (intersection * 2.0 + 1.0) / (total + 1.0);
    dice.mean().neg() + 1.0
}

/// The configured loss from logits and labels.
pub fn loss<B: Backend>(
    kind: LossKind,
    logits: Tensor<B, 4>,
    labels: Tensor<B, 3, Int>,
    weights: Tensor<B, 1>,
) -> Tensor<B, 1> {
    let targets = one_hot(labels);
    match kind {
        LossKind::CrossEntropy => cross_entropy(logits, targets, weights),
        LossKind::Dice => soft_dice(burn::tensor::activation::softmax(logits, 1), targets),
        LossKind::CeDice => {
            let probabilities = burn::tensor::activation::softmax(logits.clone(), 1);
            cross_entropy(logits, targets.clone(), weights) + soft_dice(probabilities, targets)
        }
    }
}
