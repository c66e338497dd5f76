//! Time of each convolution of the default network on burn's CPU backend
//! (flex), one case of two views at the network's image size: the measure
//! behind the convolution changes in `vendor/burn-flex` (`vendor/README.md`).
//!
//!     cargo run --release -p osteo-model --example conv_layers [-- RUNS [backward [LAYER]]]
//!
//! Prints one line per layer: the median milliseconds over RUNS (default 15)
//! runs after one warm-up. `RAYON_NUM_THREADS` sets the threads.
//!
//! With `backward`, the batch is a training step's (8 cases of two views)
//! and each line has three times: the forward pass, the gradient of the
//! input alone and the gradient of the weights alone (each the backward
//! pass of the sum of the output, through burn's autodiff). LAYER keeps the
//! layers whose name starts with it (`stem`, `conv1`, `conv2`, `shortcut`).

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
    let backward = std::env::args().nth(2).as_deref() == Some("backward");
    let device = if backward {
        Device::flex().autodiff()
    } else {
        Device::flex()
    };
    let config = NetConfig::new();
    let views = if backward { 16 } else { 2 };
    let filled = |shape: [usize; 4]| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        Tensor::<4>::from_data(TensorData::new(v, shape), &device)
    };
    let median = |mut ms: Vec<f64>| {
        ms.sort_by(f64::total_cmp);
        ms[ms.len() / 2]
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
    let only = std::env::args().nth(3).unwrap_or_default();
    for (label, cin, cout, k, stride, side) in layers {
        if !label
            .trim_start_matches("block ")
            .starts_with(only.as_str())
        {
            continue;
        }
        let x = filled([views, cin, side, side]);
        let w = filled([cout, cin, k, k]);
        let options = ConvOptions::new([stride, stride], [k / 2, k / 2], [1, 1], 1);
        if backward {
            // Forward, then the input's gradient alone, then the weights'.
            let mut times = [Vec::new(), Vec::new(), Vec::new()];
            for run in 0..=runs {
                for (which, times) in times.iter_mut().enumerate() {
                    let (x, w) = match which {
                        1 => (x.clone().require_grad(), w.clone()),
                        2 => (x.clone(), w.clone().require_grad()),
                        _ => (x.clone(), w.clone()),
                    };
                    let t = Instant::now();
                    let y = conv2d(x.clone(), w.clone(), None, options.clone());
                    if which == 0 {
                        let _ = y.into_data();
                    } else {
                        // The backward pass only: the forward's time is
                        // the first column.
                        let _ = y.clone().into_data();
                        let t = Instant::now();
                        let grads = y.sum().backward();
                        let g = if which == 1 {
                            x.grad(&grads)
                        } else {
                            w.grad(&grads)
                        };
                        let _ = g.expect("a gradient").into_data();
                        if run > 0 {
                            times.push(t.elapsed().as_secs_f64() * 1e3);
                        }
                        continue;
                    }
                    if run > 0 {
                        times.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                }
            }
            let [f, dx, dw] = times.map(median);
            total += f + dx + dw;
            println!(
                "{label:15} {k}x{k}/{stride} {cin:>3} -> {cout:<3} at {side:>3}²  forward {f:7.2}  d/dx {dx:7.2}  d/dw {dw:7.2} ms"
            );
            continue;
        }
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
