//! Output shapes and parameter counts of both U-Nets at every depth from 4 to 8.

use abdoseg_model::{Architecture, NUM_CLASSES, Normalization, UNetConfig};
use burn::{
    backend::Flex,
    module::Module,
    tensor::{Distribution, Tensor},
};

type B = Flex;

fn conv(k: usize, cin: usize, cout: usize) -> usize {
    k * k * cin * cout + cout
}

/// The parameter count the module docs describe, computed independently of the code.
fn expected_parameters(config: &UNetConfig) -> usize {
    let f = |level: usize| config.filters(level);
    let unet2 = config.architecture == Architecture::Unet2;
    // A 3×3 conv block: the conv, and the instance norm's scale and shift per channel.
    let block = |cin: usize, cout: usize| {
        conv(3, cin, cout)
            + match config.normalization {
                Normalization::None => 0,
                Normalization::Instance => 2 * cout,
            }
    };
    let mut total = 0;
    if unet2 {
        total += block(config.in_channels, f(0)) + 2 * block(f(0), f(0));
    }
    let bottom = config.depth - 1;
    for level in 0..bottom {
        let cin = match level {
            0 if unet2 => f(0),
            0 => config.in_channels,
            _ => f(level - 1),
        };
        total += block(cin, f(level)) + block(f(level), f(level));
    }
    total += block(f(bottom - 1), f(bottom)) + block(f(bottom), f(bottom));
    for level in 0..bottom {
        let out = f(level);
        total += conv(2, f(level + 1), out); // transposed 2×2
        total += block(f(level), f(level)); // skip conv
        total += block(out + f(level), out) + block(out, out);
    }
    if unet2 {
        total += 2 * block(f(0), f(0));
    }
    total + conv(1, f(0), NUM_CLASSES)
}

#[test]
fn both_variants_at_every_depth() {
    let device = Default::default();
    let variants = [Architecture::Unet1, Architecture::Unet2]
        .into_iter()
        .flat_map(|a| [(a, Normalization::None), (a, Normalization::Instance)]);
    for (architecture, normalization) in variants {
        for depth in 4..=8 {
            let config = UNetConfig::new(architecture)
                .with_depth(depth)
                .with_base_filters(4)
                .with_max_filters(64)
                .with_normalization(normalization);
            config.validate().unwrap();
            let model = config.init::<B>(&device);
            assert_eq!(
                model.num_params(),
                expected_parameters(&config),
                "{architecture:?} {normalization:?} depth {depth}"
            );
            let side = config.size_multiple() * 2;
            let input = Tensor::<B, 4>::random([2, 1, side, side], Distribution::Default, &device);
            let output = model.forward(input);
            assert_eq!(
                output.dims(),
                [2, NUM_CLASSES, side, side],
                "{architecture:?} {normalization:?} depth {depth}"
            );
            // A softmax over the classes: every pixel's probabilities sum to one.
            let sums = output.sum_dim(1).into_data().to_vec::<f32>().unwrap();
            assert!(
                sums.iter().all(|s| (s - 1.0).abs() < 1e-4),
                "{architecture:?} {normalization:?} depth {depth}"
            );
        }
    }
}

#[test]
fn unet2_has_more_parameters_than_unet1_and_depths_are_checked() {
    let one = UNetConfig::new(Architecture::Unet1);
    let two = UNetConfig::new(Architecture::Unet2);
    assert!(expected_parameters(&two) > expected_parameters(&one));
    assert!(
        UNetConfig::new(Architecture::Unet1)
            .with_depth(3)
            .validate()
            .is_err()
    );
    assert!(
        UNetConfig::new(Architecture::Unet1)
            .with_depth(9)
            .validate()
            .is_err()
    );
}
