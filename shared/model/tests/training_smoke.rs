//! A small training run on synthetic slices: the loss falls and IoU rises.

use abdoseg_model::{
    Architecture, Normalization, SliceContext,
    train::{Augmentation, Control, LossKind, Trainer, TrainingConfig, TrainingSlice, train},
};
use burn::backend::{Autodiff, Flex};
use ndarray::{Array2, Axis};

/// A bright disk (class 1) and a small dim bar (class 4) at varying places.
fn slice(i: usize) -> TrainingSlice {
    let (cy, cx) = (10.0 + (i % 5) as f32 * 2.0, 12.0 + (i % 7) as f32);
    let bar_y = 22 + i % 4;
    let mut labels = Array2::<u8>::zeros((32, 32));
    let mut image = Array2::<f32>::from_elem((32, 32), 0.1);
    for y in 0..32 {
        for x in 0..32 {
            if (y as f32 - cy).powi(2) + (x as f32 - cx).powi(2) < 36.0 {
                labels[[y, x]] = 1;
                image[[y, x]] = 0.8;
            } else if y >= bar_y && y < bar_y + 3 && (6..26).contains(&x) {
                labels[[y, x]] = 4;
                image[[y, x]] = 0.45;
            }
        }
    }
    // Texture so that the task is not a lookup.
    image
        .indexed_iter_mut()
        .for_each(|((y, x), v)| *v += ((y * 7 + x * 13 + i) % 10) as f32 * 0.01);
    TrainingSlice {
        image: image.insert_axis(Axis(0)),
        labels,
    }
}

fn config() -> TrainingConfig {
    TrainingConfig {
        architecture: Architecture::Unet1,
        normalization: Normalization::Instance,
        depth: 4,
        base_filters: 8,
        batch_size: 8,
        epochs: 20,
        learning_rate: 3e-3,
        weight_decay: 0.0,
        loss: LossKind::CeDice,
        class_weights: None,
        foreground_share: 0.25,
        augmentation: Augmentation::none(),
        seed: 7,
        early_stopping_patience: None,
        slices_per_epoch: None,
        context: SliceContext::TWO_D,
    }
}

/// A 2.5D model takes as many channels as its context has slices, and refuses others.
#[test]
fn a_three_slice_model_takes_three_channels() {
    type B = Autodiff<Flex>;
    let config = TrainingConfig {
        context: SliceContext {
            slices: 3,
            step_mm: 2.0,
        },
        epochs: 1,
        ..config()
    };
    let device = Default::default();
    let flat: Vec<_> = (0..8).map(slice).collect();
    let refused = Trainer::<B>::new(&config, &flat, &device).err().unwrap();
    assert!(refused.contains("channels"), "{refused}");
    let planes: Vec<Array2<f32>> = flat
        .iter()
        .map(|s| s.image.index_axis(Axis(0), 0).to_owned())
        .collect();
    let stacked = config.context.stack(planes, 1.0).unwrap();
    let three: Vec<_> = stacked
        .into_iter()
        .zip(&flat)
        .map(|(image, s)| TrainingSlice {
            image,
            labels: s.labels.clone(),
        })
        .collect();
    assert_eq!(three[4].image.dim(), (3, 32, 32));
    let mut trainer = Trainer::<B>::new(&config, &three, &device).unwrap();
    let report = trainer
        .run_epoch(&three, &three[..2], |_, _, _| {}, || false)
        .unwrap();
    assert!(report.train_loss.is_finite() && report.validation_loss.is_finite());
}

#[test]
fn loss_falls_and_iou_rises() {
    let train_slices: Vec<_> = (0..48).map(slice).collect();
    let validation: Vec<_> = (100..112).map(slice).collect();
    let config = config();
    let device = Default::default();
    let trained = train::<Autodiff<Flex>>(
        &config,
        &train_slices,
        &validation,
        &device,
        |_, _, _, _| {},
        |_, _| Control::Continue,
    )
    .unwrap();
    let first = &trained.history[0];
    let last = trained.history.last().unwrap();
    assert!(
        last.train_loss < first.train_loss * 0.7,
        "{} → {}",
        first.train_loss,
        last.train_loss
    );
    let best = &trained.history[trained.best_epoch - 1];
    assert!(
        best.validation.mean_foreground_iou() > first.validation.mean_foreground_iou() + 0.2,
        "{} → {}",
        first.validation.mean_foreground_iou(),
        best.validation.mean_foreground_iou()
    );
    assert!(
        best.validation.iou()[1] > 0.8,
        "{:?}",
        best.validation.iou()
    );
}

/// Two epochs in one go, or one epoch, a checkpoint, a new process's trainer restored from
/// it and the second epoch: the same second epoch.
#[test]
fn a_restored_checkpoint_continues_the_same_run() {
    type B = Autodiff<Flex>;
    let train_slices: Vec<_> = (0..24).map(slice).collect();
    let validation: Vec<_> = (100..104).map(slice).collect();
    let config = TrainingConfig {
        augmentation: Augmentation::default(),
        ..config()
    };
    let device = Default::default();
    let run = |trainer: &mut Trainer<B>| {
        trainer
            .run_epoch(&train_slices, &validation, |_, _, _| {}, || false)
            .unwrap()
    };

    let mut straight = Trainer::<B>::new(&config, &train_slices, &device).unwrap();
    run(&mut straight);
    let checkpoint = straight.checkpoint().unwrap();
    let expected = run(&mut straight);

    let mut resumed = Trainer::<B>::new(
        &TrainingConfig {
            seed: 99, // a fresh initialisation, overwritten by the checkpoint
            ..config.clone()
        },
        &train_slices,
        &device,
    )
    .unwrap();
    assert_eq!(resumed.epochs_done(), 0);
    let mut same_config = Trainer::<B>::new(&config, &train_slices, &device).unwrap();
    same_config.restore(&checkpoint).unwrap();
    let again = run(&mut same_config);
    assert_eq!(again.epoch, 2);
    assert!(
        (again.train_loss - expected.train_loss).abs() < 1e-4 * expected.train_loss,
        "{} vs {}",
        again.train_loss,
        expected.train_loss
    );
    assert_eq!(again.validation, expected.validation);

    // A checkpoint that is not one is an error, not a panic.
    let broken = abdoseg_model::train::Checkpoint {
        model: b"not weights".to_vec(),
        ..checkpoint
    };
    assert!(resumed.restore(&broken).is_err());
    let stopped = Trainer::<B>::new(&config, &train_slices, &device)
        .unwrap()
        .run_epoch(&train_slices, &validation, |_, _, _| {}, || true);
    assert!(stopped.is_none(), "a cancelled epoch reports nothing");
}
