//! U-Net 1 and U-Net 2.
//!
//! Both: `depth` resolution levels; on the way down each level has two 3×3 convolutions
//! with ReLU and a 2×2 max-pool; the deepest level (the bridge) is a pair of conv/ReLU;
//! on the way up a 2×2 transposed convolution doubles the resolution, the skip connection
//! from the same level passes through one 3×3 conv + ReLU and is concatenated, then two
//! 3×3 conv/ReLU. Filters double per level from `base_filters`, capped at `max_filters`.
//!
//! - **U-Net 1** ends in a 1×1 convolution to the five classes and a softmax.
//! - **U-Net 2** adds three 3×3 convolutions before the first level (ReLU before the first
//!   pooling) and a conv, ReLU, conv, ReLU chain before a single 1×1 softmax output conv.

use burn::{
    config::Config,
    module::Module,
    nn::{
        InstanceNorm, InstanceNormConfig, PaddingConfig2d, Relu,
        conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig},
        pool::{MaxPool2d, MaxPool2dConfig},
    },
    tensor::{Tensor, activation::softmax, backend::Backend},
};
use serde::{Deserialize, Serialize};

use crate::NUM_CLASSES;

/// Which of the study's two networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    Unet1,
    Unet2,
}

/// What follows each 3×3 convolution before its ReLU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// Conv → ReLU, as in the study.
    None,
    /// Conv → instance norm (learned scale and shift per channel) → ReLU, as nnU-Net does;
    /// it trains several times faster than the plain network.
    Instance,
}

/// Builds a [`UNet`].
#[derive(Config, Debug)]
pub struct UNetConfig {
    pub architecture: Architecture,
    /// Resolution levels, 4 to 8; the input size must be divisible by 2^(depth − 1).
    #[config(default = 5)]
    pub depth: usize,
    #[config(default = 16)]
    pub base_filters: usize,
    #[config(default = 512)]
    pub max_filters: usize,
    /// Input channels (1: one CT slice).
    #[config(default = 1)]
    pub in_channels: usize,
    #[config(default = "Normalization::None")]
    pub normalization: Normalization,
}

fn conv3(channels_in: usize, channels_out: usize) -> Conv2dConfig {
    Conv2dConfig::new([channels_in, channels_out], [3, 3]).with_padding(PaddingConfig2d::Same)
}

/// A 3×3 conv, the configured normalization, a ReLU.
#[derive(Module, Debug)]
pub struct ConvBlock<B: Backend> {
    conv: Conv2d<B>,
    norm: Option<InstanceNorm<B>>,
    relu: Relu,
}

impl<B: Backend> ConvBlock<B> {
    fn new(
        channels_in: usize,
        channels_out: usize,
        norm: Normalization,
        device: &B::Device,
    ) -> Self {
        Self {
            conv: conv3(channels_in, channels_out).init(device),
            norm: match norm {
                Normalization::None => None,
                Normalization::Instance => Some(InstanceNormConfig::new(channels_out).init(device)),
            },
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.conv.forward(x);
        let x = match &self.norm {
            Some(norm) => norm.forward(x),
            None => x,
        };
        self.relu.forward(x)
    }
}

/// Two 3×3 conv blocks.
#[derive(Module, Debug)]
pub struct DoubleConv<B: Backend> {
    first: ConvBlock<B>,
    second: ConvBlock<B>,
}

impl<B: Backend> DoubleConv<B> {
    fn new(
        channels_in: usize,
        channels_out: usize,
        norm: Normalization,
        device: &B::Device,
    ) -> Self {
        Self {
            first: ConvBlock::new(channels_in, channels_out, norm, device),
            second: ConvBlock::new(channels_out, channels_out, norm, device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.second.forward(self.first.forward(x))
    }
}

/// One level on the way up: upsample, skip conv, concatenate, two convs.
#[derive(Module, Debug)]
pub struct UpLevel<B: Backend> {
    up: ConvTranspose2d<B>,
    skip: ConvBlock<B>,
    convs: DoubleConv<B>,
    relu: Relu,
}

impl<B: Backend> UpLevel<B> {
    fn new(below: usize, skip: usize, out: usize, norm: Normalization, device: &B::Device) -> Self {
        Self {
            up: ConvTranspose2dConfig::new([below, out], [2, 2])
                .with_stride([2, 2])
                .init(device),
            skip: ConvBlock::new(skip, skip, norm, device),
            convs: DoubleConv::new(out + skip, out, norm, device),
            relu: Relu::new(),
        }
    }

    fn forward(&self, below: Tensor<B, 4>, skip: Tensor<B, 4>) -> Tensor<B, 4> {
        let up = self.relu.forward(self.up.forward(below));
        let skip = self.skip.forward(skip);
        self.convs.forward(Tensor::cat(vec![up, skip], 1))
    }
}

/// Either U-Net; see the module docs.
#[derive(Module, Debug)]
pub struct UNet<B: Backend> {
    /// U-Net 2 only: three 3×3 convs before the first level.
    stem: Vec<ConvBlock<B>>,
    down: Vec<DoubleConv<B>>,
    bridge: DoubleConv<B>,
    up: Vec<UpLevel<B>>,
    /// U-Net 2 only: conv, ReLU, conv, ReLU before the output conv.
    head: Vec<ConvBlock<B>>,
    output: Conv2d<B>,
    pool: MaxPool2d,
}

impl UNetConfig {
    /// Filters at `level` (0 = full resolution).
    pub fn filters(&self, level: usize) -> usize {
        (self.base_filters << level).min(self.max_filters)
    }

    /// Checks the configuration before anything is allocated.
    pub fn validate(&self) -> Result<(), String> {
        if !(4..=8).contains(&self.depth) {
            return Err(format!("depth must be 4 to 8, not {}", self.depth));
        }
        if self.base_filters == 0 || self.max_filters < self.base_filters || self.in_channels == 0 {
            return Err("filters and channels must be positive, max_filters ≥ base_filters".into());
        }
        Ok(())
    }

    /// The smallest input side the network accepts, and the multiple every side must be.
    pub fn size_multiple(&self) -> usize {
        1 << (self.depth - 1)
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> UNet<B> {
        let unet2 = self.architecture == Architecture::Unet2;
        let f0 = self.filters(0);
        let norm = self.normalization;
        let stem: Vec<ConvBlock<B>> = if unet2 {
            vec![
                ConvBlock::new(self.in_channels, f0, norm, device),
                ConvBlock::new(f0, f0, norm, device),
                ConvBlock::new(f0, f0, norm, device),
            ]
        } else {
            Vec::new()
        };
        let first_in = if unet2 { f0 } else { self.in_channels };
        let down: Vec<DoubleConv<B>> = (0..self.depth - 1)
            .map(|level| {
                let channels_in = if level == 0 {
                    first_in
                } else {
                    self.filters(level - 1)
                };
                DoubleConv::new(channels_in, self.filters(level), norm, device)
            })
            .collect();
        let bottom = self.depth - 1;
        let bridge = DoubleConv::new(self.filters(bottom - 1), self.filters(bottom), norm, device);
        // From the bottom up: level `bottom - 1` first.
        let up: Vec<UpLevel<B>> = (0..bottom)
            .rev()
            .map(|level| {
                UpLevel::new(
                    self.filters(level + 1),
                    self.filters(level),
                    self.filters(level),
                    norm,
                    device,
                )
            })
            .collect();
        let head: Vec<ConvBlock<B>> = if unet2 {
            vec![
                ConvBlock::new(f0, f0, norm, device),
                ConvBlock::new(f0, f0, norm, device),
            ]
        } else {
            Vec::new()
        };
        UNet {
            stem,
            down,
            bridge,
            up,
            head,
            output: Conv2dConfig::new([f0, NUM_CLASSES], [1, 1]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
        }
    }
}

impl<B: Backend> UNet<B> {
    /// Class scores before the softmax: `[batch, 5, height, width]`.
    pub fn logits(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = input;
        for block in &self.stem {
            x = block.forward(x);
        }
        let mut skips = Vec::with_capacity(self.down.len());
        for level in &self.down {
            x = level.forward(x);
            skips.push(x.clone());
            x = self.pool.forward(x);
        }
        x = self.bridge.forward(x);
        for level in &self.up {
            let skip = skips.pop().expect("one skip per level");
            x = level.forward(x, skip);
        }
        for block in &self.head {
            x = block.forward(x);
        }
        self.output.forward(x)
    }

    /// Class probabilities: softmax over the five classes, `[batch, 5, height, width]`.
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        softmax(self.logits(input), 1)
    }
}
