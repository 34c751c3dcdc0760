//! Training and inference speed of U-Net 1 (depth 5, base 16) on the CPU backend:
//! slices per second at 128×128 and 256×256. `unet_torch.py` beside this file measures
//! the same architecture in PyTorch.
//!
//!     cargo bench -p abdoseg-model --bench unet_speed

use std::time::Instant;

use abdoseg_model::{
    Architecture, UNet, UNetConfig,
    train::{LossKind, loss},
};
use burn::{
    backend::{Autodiff, Flex},
    module::AutodiffModule,
    optim::{AdamConfig, GradientsParams, Optimizer},
    tensor::{Distribution, Int, Tensor},
};

type Train = Autodiff<Flex>;

const BATCH: usize = 8;

fn main() {
    let device = Default::default();
    println!("U-Net 1, depth 5, base 16, batch {BATCH}, CE + Dice, Adam; burn flex (CPU)");
    println!("| size | training slices/s | inference slices/s |");
    println!("|---|---:|---:|");
    // `cargo bench` passes --bench; `cargo test --all-targets` (CI) runs this binary
    // without it, and then one step at a small size only checks that the bench still runs.
    let measuring = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if measuring { &[128, 256] } else { &[64] };
    for &size in sizes {
        let config = UNetConfig::new(Architecture::Unet1)
            .with_depth(5)
            .with_base_filters(16);
        let mut model: UNet<Train> = config.init(&device);
        let mut optimizer = AdamConfig::new().with_epsilon(1e-8).init();
        let images =
            Tensor::<Train, 4>::random([BATCH, 1, size, size], Distribution::Default, &device);
        let labels = Tensor::<Train, 3, Int>::random(
            [BATCH, size, size],
            Distribution::Uniform(0.0, 5.0),
            &device,
        );
        let weights = Tensor::<Train, 1>::ones([5], &device);
        let steps = match (measuring, size) {
            (false, _) => 1,
            (true, 128) => 6,
            (true, _) => 3,
        };
        let mut step = |model: UNet<Train>| {
            let logits = model.logits(images.clone());
            let value = loss(LossKind::CeDice, logits, labels.clone(), weights.clone());
            let grads = GradientsParams::from_grads(value.backward(), &model);
            optimizer.step(1e-3, model, grads)
        };
        model = step(model); // warm-up
        let started = Instant::now();
        for _ in 0..steps {
            model = step(model);
        }
        let training = (steps * BATCH) as f64 / started.elapsed().as_secs_f64();

        let inference_model = model.valid();
        let inputs = images.clone().inner();
        let _ = inference_model.forward(inputs.clone()).into_data();
        let started = Instant::now();
        for _ in 0..steps {
            let _ = inference_model.forward(inputs.clone()).into_data();
        }
        let inference = (steps * BATCH) as f64 / started.elapsed().as_secs_f64();
        println!("| {size}×{size} | {training:.1} | {inference:.1} |");
    }
}
