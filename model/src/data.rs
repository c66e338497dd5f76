//! Cases as the network sees them: loading a manifest's images through the
//! pixel pipeline, augmentation, batching into tensors, and the
//! patient-grouped split.

use crate::error::ModelError;
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::domain::ViewSize;
use crate::manifest::ManifestRow;
use crate::net::NetConfig;
use crate::pixels::{self, Grey, Placement};

/// One case, preprocessed.
#[derive(Debug, Clone)]
pub struct Sample {
    pub case_id: String,
    pub patient_id: String,
    /// Each view as `size × size` normalised values.
    pub views: Vec<Vec<f32>>,
    /// Where each view lies in its square (to map heat maps back).
    pub placements: Vec<Placement>,
    pub clinical: Vec<f32>,
    /// 1 malignant, 0 benign.
    pub label: f32,
    /// Each view's size and pixel spacing as it arrived (for the training
    /// domain, [`crate::domain`]).
    pub sizes: Vec<ViewSize>,
}

impl Sample {
    /// A case from its views (display intensities) and clinical data, each
    /// view resized into the `size` square and normalised (pipeline steps
    /// 4 and 5); no identifiers, label 0, no pixel spacing (see
    /// [`Sample::with_spacing`]).
    pub fn from_views(views: &[Grey], clinical: &crate::Clinical, size: usize) -> Sample {
        let sizes = views
            .iter()
            .map(|v| ViewSize {
                width: v.width,
                height: v.height,
                spacing_mm: None,
            })
            .collect();
        let (views, placements) = views
            .iter()
            .map(|v| {
                let (square, placement) = v.fit_square(size);
                (pixels::normalise(&square.values), placement)
            })
            .unzip();
        Sample {
            case_id: String::new(),
            patient_id: String::new(),
            views,
            placements,
            clinical: clinical.encode(),
            label: 0.0,
            sizes,
        }
    }

    /// The same sample with each view's declared pixel spacing.
    pub fn with_spacing(mut self, spacing_mm: &[Option<f64>]) -> Sample {
        for (s, mm) in self.sizes.iter_mut().zip(spacing_mm) {
            s.spacing_mm = *mm;
        }
        self
    }
}

/// Loads the images of `rows` (paths relative to `images`) at `size`.
pub fn load(rows: &[ManifestRow], images: &Path, size: usize) -> Result<Vec<Sample>, ModelError> {
    rows.iter()
        .map(|row| {
            let (views, spacing): (Vec<Grey>, Vec<Option<f64>>) =
                load_view_files(row, images)?.into_iter().unzip();
            Ok(Sample {
                case_id: row.case_id.clone(),
                patient_id: row.patient_id.clone(),
                label: f32::from(u8::from(row.label.is_malignant())),
                ..Sample::from_views(&views, &row.clinical, size).with_spacing(&spacing)
            })
        })
        .collect()
}

/// The views of one manifest row (paths relative to `images`) as display
/// intensities (pipeline steps 1–3).
pub fn load_views(row: &ManifestRow, images: &Path) -> Result<Vec<Grey>, ModelError> {
    Ok(load_view_files(row, images)?
        .into_iter()
        .map(|(grey, _)| grey)
        .collect())
}

/// The views of one manifest row with the pixel spacing each file declares.
fn load_view_files(
    row: &ManifestRow,
    images: &Path,
) -> Result<Vec<(Grey, Option<f64>)>, ModelError> {
    row.views()
        .into_iter()
        .map(|rel| {
            let path = images.join(rel);
            let fail = |e: &dyn std::fmt::Display| {
                ModelError::Image(format!("case {}: {}: {e}", row.case_id, path.display()))
            };
            let obj = dicom_object::open_file(&path).map_err(|e| fail(&e))?;
            let grey = Grey::from_dicom(&obj).map_err(|e| fail(&e))?;
            Ok((grey, pixels::pixel_spacing_mm(&obj)))
        })
        .collect()
}

/// Splits by patient, so that no patient is on both sides: about
/// `validation_share` of the patients (at least one) go to validation,
/// drawn with `seed`. Returns (train, validation) indices.
pub fn grouped_split(
    samples: &[Sample],
    validation_share: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut patients: Vec<&str> = samples.iter().map(|s| s.patient_id.as_str()).collect();
    patients.sort_unstable();
    patients.dedup();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    patients.shuffle(&mut rng);
    let n_val = ((patients.len() as f64 * validation_share).round() as usize)
        .clamp(1, patients.len().saturating_sub(1).max(1));
    let val: std::collections::HashSet<&str> = patients[..n_val].iter().copied().collect();
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (i, s) in samples.iter().enumerate() {
        if val.contains(s.patient_id.as_str()) {
            valid.push(i);
        } else {
            train.push(i);
        }
    }
    (train, valid)
}

/// Random augmentation of one view: a crop (zoom 1.0–1.12 with a shift),
/// a rotation of at most ±7°, a left–right flip (a long bone seen from the
/// other limb), brightness ±0.1 and contrast ×0.85–1.15. Applied as one
/// affine resampling (bilinear) of the normalised square.
pub fn augment(view: &[f32], size: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let zoom: f32 = rng.gen_range(1.0..1.12);
    let angle: f32 = rng.gen_range(-7.0f32..7.0).to_radians();
    let flip = rng.gen_bool(0.5);
    let shift = (size as f32) * 0.04;
    let (tx, ty): (f32, f32) = (rng.gen_range(-shift..shift), rng.gen_range(-shift..shift));
    let brightness: f32 = rng.gen_range(-0.1..0.1);
    let contrast: f32 = rng.gen_range(0.85..1.15);
    // Sample the padded square (outside is 0, black).
    let grey = Grey {
        width: size,
        height: size,
        values: view.to_vec(),
    };
    let c = (size as f32 - 1.0) / 2.0;
    let (sin, cos) = angle.sin_cos();
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        for x in 0..size {
            let mut px = (x as f32 - c) / zoom;
            let py = (y as f32 - c) / zoom;
            if flip {
                px = -px;
            }
            let sx = cos * px - sin * py + c + tx;
            let sy = sin * px + cos * py + c + ty;
            let inside =
                (0.0..=(size - 1) as f32).contains(&sx) && (0.0..=(size - 1) as f32).contains(&sy);
            let v = if inside { grey.sample(sx, sy) } else { 0.0 };
            out.push(((v * contrast) + brightness).clamp(0.0, 2.5));
        }
    }
    out
}

/// Share of training cases shown without clinical data.
pub const CLINICAL_DROPOUT: f64 = 0.5;

/// Which positions of an `m × m` feature map of a view placed at `p` in the
/// `size × size` square are pooled: those whose cell centre lies inside the
/// image and at least `edge` cells away from its edge. Near the edge the
/// convolutions see the padding — an "end" of every bone that runs off the
/// film — which is not anatomy; left in, the network leans on it and the
/// heat maps light up the film's border instead of the lesion (with one
/// ring left out, the cells next to it still drew a third of the peaks on
/// phantoms; with two, almost none).
pub fn positions(p: Placement, size: usize, m: usize, edge: usize) -> Vec<f32> {
    let cell = size as f32 / m as f32;
    let margin = edge as f32 * cell;
    let inside = |centre: f32, start: usize, len: usize| {
        centre >= start as f32 + margin && centre <= (start + len) as f32 - margin
    };
    let mut out: Vec<f32> = (0..m * m)
        .map(|k| {
            let (i, j) = (k / m, k % m);
            let (cy, cx) = ((i as f32 + 0.5) * cell, (j as f32 + 0.5) * cell);
            f32::from(u8::from(
                inside(cy, p.top, p.height) && inside(cx, p.left, p.width),
            ))
        })
        .collect();
    if out.iter().all(|&x| x == 0.0) {
        out.iter_mut().for_each(|x| *x = 1.0);
    }
    out
}

/// A batch as tensors.
pub struct Batch {
    /// `[B·V, 1, S, S]`, case-major.
    pub images: Tensor<4>,
    /// `[B·V, 1, m·m]`: the positions pooled (see [`positions`]).
    pub positions: Tensor<3>,
    /// `[B, V]`: 1 where the view exists.
    pub mask: Tensor<2>,
    /// `[B, FEATURES]`.
    pub clinical: Tensor<2>,
    /// `[B]`.
    pub labels: Tensor<1>,
    pub labels_host: Vec<f32>,
}

/// Stacks `samples` (optionally augmented, with clinical dropout) into
/// tensors on `device` for a network of shape `config`. `V` is the most
/// views any of them has; a missing view is a black image with mask 0.
pub fn batch(
    samples: &[&Sample],
    config: &NetConfig,
    device: &Device,
    mut augment_with: Option<&mut ChaCha8Rng>,
) -> Batch {
    let (size, map) = (config.image_size, config.map_size());
    let b = samples.len();
    let v = samples
        .iter()
        .map(|s| s.views.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut images = Vec::with_capacity(b * v * size * size);
    let mut mask = Vec::with_capacity(b * v);
    let mut pooled = Vec::with_capacity(b * v * map * map);
    let mut clinical = Vec::new();
    let mut labels = Vec::with_capacity(b);
    for s in samples {
        for i in 0..v {
            match s.views.get(i) {
                Some(view) => {
                    match augment_with.as_deref_mut() {
                        Some(rng) => images.extend(augment(view, size, rng)),
                        None => images.extend_from_slice(view),
                    }
                    mask.push(1.0);
                    pooled.extend(positions(s.placements[i], size, map, config.edge_cells));
                }
                None => {
                    images.extend(std::iter::repeat_n(0.0, size * size));
                    mask.push(0.0);
                    pooled.extend(std::iter::repeat_n(1.0, map * map));
                }
            }
        }
        // Modality dropout: in training, half of the cases are shown without
        // their clinical data (all "missing"), so the image branch has to
        // find the lesion on its own and the model copes with missing data.
        let drop_clinical = augment_with
            .as_deref_mut()
            .is_some_and(|rng| rng.gen_bool(CLINICAL_DROPOUT));
        if drop_clinical {
            clinical.extend(crate::Clinical::default().encode());
        } else {
            clinical.extend_from_slice(&s.clinical);
        }
        labels.push(s.label);
    }
    let features = samples
        .first()
        .map_or(crate::clinical::FEATURES, |s| s.clinical.len());
    Batch {
        images: Tensor::from_data(TensorData::new(images, [b * v, 1, size, size]), device),
        positions: Tensor::from_data(TensorData::new(pooled, [b * v, 1, map * map]), device),
        mask: Tensor::from_data(TensorData::new(mask, [b, v]), device),
        clinical: Tensor::from_data(TensorData::new(clinical, [b, features]), device),
        labels: Tensor::from_data(TensorData::new(labels.clone(), [b]), device),
        labels_host: labels,
    }
}

/// The area under the ROC curve (Mann–Whitney, ties count one half); `None`
/// without both classes. Used for early stopping and the model card; the
/// trial's own analysis engine (with CIs) lives in `trial::analysis`.
pub fn auc(scores: &[f32], labels: &[f32]) -> Option<f64> {
    let mut pairs: Vec<(f32, bool)> = scores
        .iter()
        .zip(labels)
        .map(|(&s, &l)| (s, l > 0.5))
        .collect();
    let n_pos = pairs.iter().filter(|p| p.1).count();
    let n_neg = pairs.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Rank sum of the positives with mid-ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let mid = (i + j + 1) as f64 / 2.0;
        rank_sum += mid * pairs[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos * n_neg) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_one_half() {
        assert_eq!(
            auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]),
            Some(0.75)
        );
        assert_eq!(auc(&[0.5, 0.5], &[0.0, 1.0]), Some(0.5));
        assert_eq!(auc(&[0.5, 0.6], &[1.0, 1.0]), None);
    }

    #[test]
    fn pooled_positions_leave_out_the_edge_cells() {
        // A 96 × 72 image letterboxed into 96 (left 12, width 72), a 12 × 12
        // map of 8-pixel cells, one ring: columns whose centre lies within
        // 8 px of the image's edge (x < 20 or x > 76) and the first and last
        // rows are out.
        let p = Placement {
            left: 12,
            top: 0,
            width: 72,
            height: 96,
        };
        let keep = positions(p, 96, 12, 1);
        let row: Vec<f32> = keep[..12].to_vec();
        assert_eq!(row, vec![0.0; 12], "the top row touches the edge");
        let middle: Vec<f32> = keep[6 * 12..7 * 12].to_vec();
        // centres 4, 12, 20, …, 92: kept from 20 to 76.
        assert_eq!(
            middle,
            vec![0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
        );
        // Two rings: 16 px from the edge (x from 28 to 68); rows 0 and 1
        // (centres 4 and 12) out, row 2 (centre 20) in.
        let keep = positions(p, 96, 12, 2);
        assert_eq!(keep[..24], vec![0.0; 24]);
        assert_eq!(keep[24 + 5], 1.0);
        assert_eq!(
            keep[6 * 12..7 * 12],
            vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
        );
        // A tiny image keeps everything rather than nothing.
        let tiny = Placement {
            left: 40,
            top: 40,
            width: 8,
            height: 8,
        };
        assert!(positions(tiny, 96, 12, 2).iter().all(|&k| k == 1.0));
    }

    #[test]
    fn split_keeps_patients_together() {
        let s = |c: &str, p: &str| Sample {
            case_id: c.into(),
            patient_id: p.into(),
            views: vec![],
            placements: vec![],
            clinical: vec![],
            label: 0.0,
            sizes: vec![],
        };
        let samples = vec![
            s("a", "1"),
            s("b", "1"),
            s("c", "2"),
            s("d", "3"),
            s("e", "3"),
            s("f", "4"),
        ];
        for seed in 0..20 {
            let (train, val) = grouped_split(&samples, 0.5, seed);
            assert_eq!(train.len() + val.len(), 6);
            for &t in &train {
                assert!(val
                    .iter()
                    .all(|&v| samples[v].patient_id != samples[t].patient_id));
            }
        }
    }
}
