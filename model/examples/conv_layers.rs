//! Time of each convolution of the default network on burn's CPU backend
//! (flex), one case of two views at the network's image size: the measure
//! behind the convolution changes in `vendor/burn-flex` (`vendor/README.md`).
//!
//!     cargo run --release -p osteo-model --example conv_layers [-- RUNS]
//!
//! Prints one line per layer: the median milliseconds over RUNS (default 15)
//! runs after one warm-up. `RAYON_NUM_THREADS` sets the threads.

use std::time::Instant;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use osteo_model::NetConfig;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(15);
    let device = Device::flex();
    let config = NetConfig::new();
    let views = 2;
    let filled = |shape: [usize; 4]| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        Tensor::<4>::from_data(TensorData::new(v, shape), &device)
    };
    // (label, channels in, channels out, kernel, stride, input side)
    let mut layers = Vec::new();
    let mut side = config.image_size;
    layers.push(("stem", 1, config.channels[0], 5, 2, side));
    side = side.div_ceil(2);
    let mut cin = config.channels[0];
    for (i, &cout) in config.channels.iter().enumerate() {
        let stride = if i == 0 { 1 } else { 2 };
        layers.push(("block conv1", cin, cout, 3, stride, side));
        if stride != 1 || cin != cout {
            layers.push(("block shortcut", cin, cout, 1, stride, side));
        }
        side = side.div_ceil(stride);
        layers.push(("block conv2", cout, cout, 3, 1, side));
        cin = cout;
    }
    let mut total = 0.0;
    for (label, cin, cout, k, stride, side) in layers {
        let x = filled([views, cin, side, side]);
        let w = filled([cout, cin, k, k]);
        let options = ConvOptions::new([stride, stride], [k / 2, k / 2], [1, 1], 1);
        let mut ms = Vec::new();
        for run in 0..=runs {
            let t = Instant::now();
            let y = conv2d(x.clone(), w.clone(), None, options.clone());
            let _ = y.into_data();
            if run > 0 {
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        ms.sort_by(f64::total_cmp);
        let median = ms[ms.len() / 2];
        total += median;
        println!(
            "{label:15} {k}x{k}/{stride} {cin:>3} -> {cout:<3} at {side:>3}²  {median:7.2} ms"
        );
    }
    println!("all convolutions                          {total:7.2} ms");
}
