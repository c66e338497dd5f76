//! The network: a shared ResNet-style encoder applied to each view,
//! attention pooling over the views a case has (a mask marks the missing
//! ones), a clinical branch (age, sex, bone and location, symptoms, known
//! primary malignancy, the reader's Bone-RADS points and category), and a
//! fusion head giving one malignancy logit.
//!
//! ```text
//! view (1×S×S) ─ stem conv5×5/2 ─ stage 1..k (basic residual blocks, ×2 down) ─┐ feature maps
//!                                                            (Grad-CAM reads these)│
//!                                                  log-sum-exp pool ─ attention over views (masked)
//! clinical (FEATURES) ─ linear ─ ReLU ─────────────────────────────────────┤ concat
//!                                               dropout ─ linear ─ ReLU ─ linear → logit
//! ```
//! The model carries no backend type: burn 0.22 dispatches on the
//! [`Device`] its tensors live on (CPU `flex` by default; wgpu or CUDA with
//! the crate's GPU features).

use crate::error::ModelError;
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::{relu, softmax, tanh};
use burn::tensor::{Device, Tensor};

use crate::clinical::FEATURES;

/// The architecture. Saved as `config.json` beside the weights.
#[derive(Config, Debug, PartialEq)]
pub struct NetConfig {
    /// Side of the square each view is resized and padded to.
    #[config(default = 384)]
    pub image_size: usize,
    /// The most views one case may have (frontal, lateral, oblique).
    #[config(default = 3)]
    pub max_views: usize,
    /// Channels of the stem and of each residual stage; every stage after
    /// the first halves the resolution.
    #[config(default = "vec![16, 32, 64, 128]")]
    pub channels: Vec<usize>,
    /// Width of the attention scorer over views.
    #[config(default = 32)]
    pub attention_hidden: usize,
    /// Width of the clinical branch; 0 leaves the clinical data out (an
    /// image-only model).
    #[config(default = 32)]
    pub clinical_hidden: usize,
    #[config(default = 64)]
    pub fusion_hidden: usize,
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Sharpness `r` of the log-sum-exp pooling over positions,
    /// `(1/r)·log(mean(exp(r·A)))`: 0 would be average pooling, ∞ max
    /// pooling. A sharper pooling lets fewer positions carry the evidence,
    /// so the heat map's coarse factor stays on the lesion (4 put the
    /// heat-map peak in the lesion about 75% of the time on phantoms, 12
    /// about 85%).
    #[config(default = 12.0)]
    pub pool_sharpness: f64,
    /// Rings of feature cells along each view's edge left out of the
    /// pooling (see [`crate::data::positions`]).
    #[config(default = 2)]
    pub edge_cells: usize,
}

impl NetConfig {
    /// The feature maps' side for one view.
    pub fn map_size(&self) -> usize {
        let mut s = self.image_size.div_ceil(2);
        for _ in 1..self.channels.len() {
            s = s.div_ceil(2);
        }
        s
    }

    /// A checked network of this shape on `device`.
    pub fn init(&self, device: &Device) -> Result<Net, ModelError> {
        if self.channels.is_empty() || self.channels.contains(&0) {
            return Err(ModelError::Config(
                "channels must list at least one stage, none of width 0".into(),
            ));
        }
        if !(self.pool_sharpness > 0.0 && self.pool_sharpness.is_finite()) {
            return Err(ModelError::Config(
                "pool_sharpness must be a positive number".into(),
            ));
        }
        if self.image_size < 16 || self.max_views == 0 {
            return Err(ModelError::Config(
                "image_size must be at least 16 and max_views at least 1".into(),
            ));
        }
        let c0 = self.channels[0];
        let conv = |cin: usize, cout: usize, k: usize, s: usize| {
            Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
                .with_bias(false)
                .init(device)
        };
        let mut blocks = Vec::new();
        let mut cin = c0;
        for (i, &cout) in self.channels.iter().enumerate() {
            let stride = if i == 0 { 1 } else { 2 };
            let shortcut = (stride != 1 || cin != cout).then(|| Shortcut {
                conv: conv(cin, cout, 1, stride),
                norm: BatchNormConfig::new(cout).init(device),
            });
            blocks.push(BasicBlock {
                conv1: conv(cin, cout, 3, stride),
                norm1: BatchNormConfig::new(cout).init(device),
                conv2: conv(cout, cout, 3, 1),
                norm2: BatchNormConfig::new(cout).init(device),
                shortcut,
            });
            cin = cout;
        }
        let c = cin;
        let clinical = (self.clinical_hidden > 0)
            .then(|| LinearConfig::new(FEATURES, self.clinical_hidden).init(device));
        Ok(Net {
            stem: conv(1, c0, 5, 2),
            stem_norm: BatchNormConfig::new(c0).init(device),
            blocks,
            attention_in: LinearConfig::new(c, self.attention_hidden).init(device),
            attention_out: LinearConfig::new(self.attention_hidden, 1).init(device),
            clinical,
            dropout: DropoutConfig::new(self.dropout).init(),
            fusion: LinearConfig::new(c + self.clinical_hidden, self.fusion_hidden).init(device),
            output: LinearConfig::new(self.fusion_hidden, 1).init(device),
            pool_sharpness: self.pool_sharpness,
        })
    }
}

#[derive(Module, Debug)]
pub struct Shortcut {
    conv: Conv2d,
    norm: BatchNorm,
}

/// conv3×3 – BN – ReLU – conv3×3 – BN, plus the (projected) input, ReLU.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    shortcut: Option<Shortcut>,
}

impl BasicBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = relu(self.norm1.forward(self.conv1.forward(x.clone())));
        let y = self.norm2.forward(self.conv2.forward(y));
        let skip = match &self.shortcut {
            Some(s) => s.norm.forward(s.conv.forward(x)),
            None => x,
        };
        relu(y + skip)
    }
}

#[derive(Module, Debug)]
pub struct Net {
    stem: Conv2d,
    stem_norm: BatchNorm,
    blocks: Vec<BasicBlock>,
    attention_in: Linear,
    attention_out: Linear,
    clinical: Option<Linear>,
    dropout: Dropout,
    fusion: Linear,
    output: Linear,
    pool_sharpness: f64,
}

/// What one forward pass gives.
pub struct Output {
    /// One malignancy logit per case, `[B]`.
    pub logits: Tensor<1>,
    /// The attention weight of each view, `[B, V]` (0 for a missing view).
    pub attention: Tensor<2>,
}

impl Net {
    /// The last convolutional block's feature maps, `[N, C, h, w]`, for
    /// `N` images `[N, 1, S, S]`.
    pub fn encode(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = relu(self.stem_norm.forward(self.stem.forward(images)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        x
    }

    /// From feature maps `[B·V, C, h, w]` (case-major: the views of case 0
    /// first), the positions to pool `[B·V, 1, h·w]` (1 kept), the view mask
    /// `[B, V]` (1 present, 0 missing) and the clinical vectors
    /// `[B, FEATURES]` to the logits.
    pub fn head(
        &self,
        maps: Tensor<4>,
        positions: Tensor<3>,
        mask: Tensor<2>,
        clinical: Tensor<2>,
    ) -> Output {
        let [b, v] = mask.dims();
        let [_, c, h, w] = maps.dims();
        // Log-sum-exp pooling over the kept positions (between average and
        // max pooling): a lesion is local, so the strongest evidence counts.
        let flat = maps.reshape([b * v, c, h * w]);
        let masked = flat + (positions.clone() - 1.0) * 1.0e4;
        let top = masked.clone().max_dim(2).detach();
        let kept = positions.sum_dim(2).clamp_min(1.0);
        let r = self.pool_sharpness;
        let pooled = ((((masked - top.clone()) * r).exp().sum_dim(2) / kept).log() / r + top)
            .reshape([b, v, c]);
        // Attention over views; a missing view gets a score of −10⁴.
        let scores = self
            .attention_out
            .forward(tanh(self.attention_in.forward(pooled.clone())))
            .reshape([b, v]);
        let scores = scores + (mask - 1.0) * 1.0e4;
        let attention = softmax(scores, 1);
        let case = (pooled * attention.clone().reshape([b, v, 1]))
            .sum_dim(1)
            .reshape([b, c]);
        let fused = match &self.clinical {
            Some(linear) => Tensor::cat(vec![case, relu(linear.forward(clinical))], 1),
            None => case,
        };
        let hidden = relu(self.fusion.forward(self.dropout.forward(fused)));
        Output {
            logits: self.output.forward(hidden).reshape([b]),
            attention,
        }
    }

    /// The whole network: images `[B·V, 1, S, S]`, pooled positions
    /// `[B·V, 1, h·w]` (see [`crate::data::positions`]), view mask `[B, V]`,
    /// clinical `[B, FEATURES]`.
    pub fn forward(
        &self,
        images: Tensor<4>,
        positions: Tensor<3>,
        mask: Tensor<2>,
        clinical: Tensor<2>,
    ) -> Output {
        self.head(self.encode(images), positions, mask, clinical)
    }
}
