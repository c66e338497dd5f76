//! burn's CPU backend computes convolutions with the faster code in
//! `vendor/burn-flex` (see `vendor/README.md`): every path it can take —
//! the im2col + GEMM path of `conv2d_im2col.rs` (every kernel larger than
//! 1×1 without groups: dilation, stride, padding, bias, several batch items
//! and tiles, few channels), the general NHWC path (groups), the strided
//! 1×1 path and the stride-1 1×1 path — must give what a convolution
//! written out as loops gives. So must the gradients of the input and of
//! the weights that training takes through burn's autodiff (both computed
//! directly in `vendor/burn-flex`).

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

#[derive(Debug)]
struct Case {
    batch: usize,
    channels_in: usize,
    channels_out: usize,
    height: usize,
    width: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    bias: bool,
}

/// A fixed pseudo-random sequence in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The output side of `c` along axis `i` (0: height, 1: width).
fn out_side(c: &Case, i: usize) -> usize {
    let size = [c.height, c.width][i];
    (size + 2 * c.padding[i] - c.dilation[i] * (c.kernel[i] - 1) - 1) / c.stride[i] + 1
}

/// Calls `visit(output, input, weight)` with the flat indices of every
/// kernel tap that falls inside the input, for every output position: the
/// convolution's definition, which the sums below are written over.
fn taps(c: &Case, mut visit: impl FnMut(usize, usize, usize)) {
    let (oh, ow) = (out_side(c, 0), out_side(c, 1));
    let cin_g = c.channels_in / c.groups;
    let cout_g = c.channels_out / c.groups;
    for n in 0..c.batch {
        for co in 0..c.channels_out {
            let g = co / cout_g;
            for i in 0..oh {
                for j in 0..ow {
                    let yi = ((n * c.channels_out + co) * oh + i) * ow + j;
                    for ci in 0..cin_g {
                        for ki in 0..c.kernel[0] {
                            for kj in 0..c.kernel[1] {
                                let ih = (i * c.stride[0] + ki * c.dilation[0]) as isize
                                    - c.padding[0] as isize;
                                let iw = (j * c.stride[1] + kj * c.dilation[1]) as isize
                                    - c.padding[1] as isize;
                                if ih < 0
                                    || iw < 0
                                    || ih >= c.height as isize
                                    || iw >= c.width as isize
                                {
                                    continue;
                                }
                                let xi = ((n * c.channels_in + g * cin_g + ci) * c.height
                                    + ih as usize)
                                    * c.width
                                    + iw as usize;
                                let wi = ((co * cin_g + ci) * c.kernel[0] + ki) * c.kernel[1] + kj;
                                visit(yi, xi, wi);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The convolution as its definition: for each output position, the bias
/// and the sum over the group's input channels and the kernel's taps that
/// fall inside the input.
fn by_loops(c: &Case, x: &[f32], w: &[f32], b: &[f32]) -> (Vec<f32>, [usize; 2]) {
    let (oh, ow) = (out_side(c, 0), out_side(c, 1));
    let mut y = vec![0f32; c.batch * c.channels_out * oh * ow];
    if c.bias {
        for (k, v) in y.iter_mut().enumerate() {
            *v = b[(k / (oh * ow)) % c.channels_out];
        }
    }
    taps(c, |yi, xi, wi| y[yi] += x[xi] * w[wi]);
    (y, [oh, ow])
}

fn check(c: Case) {
    let device = Device::flex();
    let x = values(c.batch * c.channels_in * c.height * c.width, 1);
    let w = values(
        c.channels_out * (c.channels_in / c.groups) * c.kernel[0] * c.kernel[1],
        2,
    );
    let b = values(c.channels_out, 3);
    let (expected, [oh, ow]) = by_loops(&c, &x, &w, &b);
    let xt = Tensor::<4>::from_data(
        TensorData::new(x, [c.batch, c.channels_in, c.height, c.width]),
        &device,
    );
    let wt = Tensor::<4>::from_data(
        TensorData::new(
            w,
            [
                c.channels_out,
                c.channels_in / c.groups,
                c.kernel[0],
                c.kernel[1],
            ],
        ),
        &device,
    );
    let bt = c
        .bias
        .then(|| Tensor::<1>::from_data(TensorData::new(b, [c.channels_out]), &device));
    let y = conv2d(
        xt,
        wt,
        bt,
        ConvOptions::new(c.stride, c.padding, c.dilation, c.groups),
    );
    assert_eq!(y.dims(), [c.batch, c.channels_out, oh, ow]);
    let got = y
        .into_data()
        .try_to_vec::<f32>()
        .expect("the convolution gives f32 values");
    let worst = got
        .iter()
        .zip(&expected)
        .map(|(a, e)| (a - e).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "{c:?}: off by {worst}");
}

/// The gradients of `Σ r · conv(x, w)` with respect to `x` and `w`, as the
/// definition gives them: each output position's `r` times the input (for
/// `w`) or the weight (for `x`) of every tap inside the input.
fn grads_by_loops(c: &Case, x: &[f32], w: &[f32], r: &[f32]) -> (Vec<f32>, Vec<f32>) {
    // Summed in f64: the big case adds tens of thousands of terms, and an
    // f32 running sum would be the less exact side of the comparison.
    let mut dx = vec![0f64; x.len()];
    let mut dw = vec![0f64; w.len()];
    taps(c, |yi, xi, wi| {
        dw[wi] += f64::from(r[yi] * x[xi]);
        dx[xi] += f64::from(r[yi] * w[wi]);
    });
    let single = |v: Vec<f64>| v.into_iter().map(|g| g as f32).collect();
    (single(dx), single(dw))
}

/// The input's and the weights' gradients through burn's autodiff against
/// the definition.
fn check_grads(c: Case) {
    let device = Device::flex().autodiff();
    let x = values(c.batch * c.channels_in * c.height * c.width, 4);
    let w_shape = [
        c.channels_out,
        c.channels_in / c.groups,
        c.kernel[0],
        c.kernel[1],
    ];
    let w = values(w_shape.iter().product(), 5);
    let (y, [oh, ow]) = by_loops(&c, &x, &w, &[]);
    let r = values(y.len(), 6);
    let (dx_expected, dw_expected) = grads_by_loops(&c, &x, &w, &r);
    let xt = Tensor::<4>::from_data(
        TensorData::new(x, [c.batch, c.channels_in, c.height, c.width]),
        &device,
    )
    .require_grad();
    let wt = Tensor::<4>::from_data(TensorData::new(w, w_shape), &device).require_grad();
    let rt = Tensor::<4>::from_data(
        TensorData::new(r, [c.batch, c.channels_out, oh, ow]),
        &device,
    );
    let y = conv2d(
        xt.clone(),
        wt.clone(),
        None,
        ConvOptions::new(c.stride, c.padding, c.dilation, c.groups),
    );
    let grads = (y * rt).sum().backward();
    for (name, t, expected) in [("input", &xt, dx_expected), ("weights", &wt, dw_expected)] {
        let got = t
            .grad(&grads)
            .expect("a gradient")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 values");
        assert_eq!(got.len(), expected.len());
        let worst = got
            .iter()
            .zip(&expected)
            .map(|(a, e)| (a - e).abs() / e.abs().max(1.0))
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-4,
            "gradient of the {name}, {c:?}: off by {worst}"
        );
    }
}

/// Two batch items of `side` (height, width), channels `cin` → `cout`, a
/// `kernel`, stride 1, no padding, no dilation, one group, no bias: what the
/// cases below change.
fn conv(cin: usize, cout: usize, kernel: [usize; 2], side: [usize; 2]) -> Case {
    Case {
        batch: 2,
        channels_in: cin,
        channels_out: cout,
        height: side[0],
        width: side[1],
        kernel,
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
        groups: 1,
        bias: false,
    }
}

#[test]
fn the_general_path_matches_the_definition() {
    // The network's own shapes, small: 3×3 stride 1 and 2 with padding.
    for (cin, cout, stride) in [(16, 16, 1), (16, 32, 2), (32, 64, 2), (12, 24, 2)] {
        check(Case {
            stride: [stride, stride],
            padding: [1, 1],
            ..conv(cin, cout, [3, 3], [37, 29])
        });
    }
    // More than one tile of 512 positions per batch item, with a bias.
    check(Case {
        batch: 3,
        padding: [1, 1],
        bias: true,
        ..conv(6, 10, [3, 3], [40, 33])
    });
    // The stem: one channel in, 5×5 stride 2.
    check(Case {
        stride: [2, 2],
        padding: [2, 2],
        ..conv(1, 16, [5, 5], [48, 44])
    });
}

#[test]
fn groups_dilation_and_uneven_shapes_match_the_definition() {
    check(Case {
        stride: [2, 1],
        padding: [2, 0],
        dilation: [2, 3],
        groups: 2,
        bias: true,
        ..conv(8, 12, [3, 2], [21, 17])
    });
    check(Case {
        batch: 1,
        groups: 3,
        ..conv(9, 9, [3, 3], [11, 13])
    });
}

#[test]
fn one_by_one_convolutions_match_the_definition() {
    // The residual shortcut: 1×1 stride 2, odd and even sides.
    for side in [[24, 24], [23, 17], [1, 5]] {
        check(Case {
            stride: [2, 2],
            ..conv(16, 32, [1, 1], side)
        });
    }
    // Unequal strides, groups and a bias on the strided 1×1 path.
    check(Case {
        batch: 3,
        stride: [3, 2],
        groups: 2,
        bias: true,
        ..conv(6, 4, [1, 1], [10, 9])
    });
    // Stride 1 (upstream's 1×1 path) and a padded 1×1 (the general path).
    for (stride, padding) in [([1, 1], [0, 0]), ([2, 2], [1, 1])] {
        check(Case {
            stride,
            padding,
            bias: true,
            ..conv(5, 7, [1, 1], [9, 8])
        });
    }
}

#[test]
fn few_channels_match_the_definition() {
    check(Case {
        padding: [1, 1],
        bias: true,
        ..conv(3, 4, [3, 3], [19, 23])
    });
}

#[test]
fn the_gradients_of_input_and_weights_match_the_definition() {
    // The network's layers, small: the stem, 3×3 stride 1 and 2, the
    // strided 1×1 shortcut; sides that leave tiles and padding uneven.
    check_grads(Case {
        stride: [2, 2],
        padding: [2, 2],
        ..conv(1, 16, [5, 5], [38, 35])
    });
    for (cin, cout, stride) in [(16, 16, 1), (16, 32, 2), (8, 4, 2)] {
        check_grads(Case {
            stride: [stride, stride],
            padding: [1, 1],
            ..conv(cin, cout, [3, 3], [23, 29])
        });
    }
    check_grads(Case {
        stride: [2, 2],
        ..conv(16, 32, [1, 1], [23, 18])
    });
    // More rows than one im2col tile holds (more than 128 Ki elements).
    check_grads(Case {
        batch: 3,
        padding: [1, 1],
        ..conv(16, 8, [3, 3], [130, 97])
    });
    // Groups, dilation, unequal strides and padding larger than the reach.
    check_grads(Case {
        stride: [2, 1],
        padding: [2, 0],
        dilation: [2, 3],
        groups: 2,
        ..conv(8, 12, [3, 2], [21, 17])
    });
    check_grads(Case {
        stride: [3, 3],
        padding: [4, 4],
        ..conv(2, 3, [3, 3], [7, 5])
    });
}
