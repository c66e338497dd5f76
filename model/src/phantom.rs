//! Synthetic radiograph phantoms: no patient data may ship, so the tests,
//! the demo model and the demo study learn from generated cases.
//!
//! Each case is a long bone (femur, tibia, humerus or fibula) seen in a
//! frontal and a lateral view — soft tissue, cortex and medulla, the
//! metaphysis flaring toward one end — with one lesion whose look follows
//! the radiology of bone tumours:
//! - **benign-like**: geographic, sharp margin, often a sclerotic rim, no
//!   periosteal reaction, cortex intact;
//! - **malignant-like**: ill-defined or permeative (moth-eaten) margin,
//!   cortical breach, aggressive (spiculated) periosteal reaction, a
//!   soft-tissue mass.
//!
//! Every feature is drawn with a class-dependent probability, so the classes
//! overlap as they do in practice, and a small share of labels is flipped
//! (label noise). The clinical fields and the Bone-RADS score follow the
//! drawn features (the score as a reader would give it, with some grading
//! error). The lesion mask (lesion, breach, periosteal reaction and
//! soft-tissue mass) is kept for testing heat maps.
//!
//! With [`PhantomConfig::realistic`] a view also has what makes a
//! radiograph look like one (drawn in fractions of the image's size, so
//! that it looks the same at any resolution): trabecular bone (ridged value
//! noise, its cells elongated along the shaft), a cortex brightest where the
//! beam runs tangential to it, muscle under a darker layer of subcutaneous
//! fat and a skin line, the unexposed band outside the collimator's field
//! with a soft edge, and a lead "L" marker burned into a corner. None of it
//! depends on the class.
//!
//! Images are written as real DICOM files: CR, 12 bits stored, MONOCHROME1
//! or MONOCHROME2 at random, with a window.

use crate::error::ModelError;
use std::path::Path;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clinical::Clinical;
use crate::manifest::{Label, ManifestRow};
use crate::pixels::{Grey, Window};

const CR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.1";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// How the phantoms are drawn.
#[derive(Debug, Clone)]
pub struct PhantomConfig {
    pub width: usize,
    pub height: usize,
    /// Share of labels flipped after drawing.
    pub label_noise: f64,
    pub seed: u64,
    /// Draw the lesion. Off gives the same cases (anatomy, clinical data,
    /// noise) without it: the counterfactual for testing what a model uses.
    pub lesion: bool,
    /// Draw what a real radiograph has besides the anatomy (see
    /// [`Realism`]): trabecular texture, a graded cortex, muscle and fat, a
    /// collimation edge and a burned-in lead side marker. The demonstration
    /// study and the demo model use it at [`crate::demo::PHANTOM_WIDTH`] ×
    /// [`crate::demo::PHANTOM_HEIGHT`]; the tests' small phantoms leave it
    /// off for speed.
    pub realistic: bool,
    /// How this set's hospital differs from the others (the federated
    /// demonstration's sites); the default is no shift.
    pub shift: SiteShift,
}

/// A hospital's own look and case mix: its detector's contrast, extra
/// detector noise, its share of malignant lesions, and the spectrum of the
/// lesions it sees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteShift {
    /// Brightness differences scaled around mid-grey (1: none).
    pub contrast: f32,
    /// Amplitude of extra uniform noise per pixel (0: none).
    pub noise: f32,
    /// Share of cases drawn malignant (before label noise).
    pub malignant_share: f64,
    /// The spectrum of lesions the hospital sees, from −1 to 1 (0: as
    /// drawn). A referral centre for sarcoma (toward 1) sees malignant
    /// lesions that are overt — permeative, breaching the cortex, with a
    /// periosteal reaction — and benign ones that are textbook (sclerotic
    /// rim); a general hospital (toward −1) sees subtler malignant lesions
    /// and benign ones that look less settled. Each class keeps its
    /// features, only their frequencies move, so the same reading rules
    /// hold everywhere but a model trained at one end of the spectrum has
    /// seen little of the other (spectrum bias). The mix of malignant
    /// entities moves with it: a sarcoma centre's malignant lesions are
    /// mostly primary sarcomas of the young, a general hospital's mostly
    /// metastases and myeloma of the old.
    pub spectrum: f64,
}

impl Default for SiteShift {
    fn default() -> Self {
        SiteShift {
            contrast: 1.0,
            noise: 0.0,
            malignant_share: 0.4,
            spectrum: 0.0,
        }
    }
}

impl Default for PhantomConfig {
    fn default() -> Self {
        PhantomConfig {
            width: 192,
            height: 256,
            label_noise: 0.03,
            seed: 1,
            lesion: true,
            realistic: false,
            shift: SiteShift::default(),
        }
    }
}

/// One generated view.
#[derive(Debug, Clone)]
pub struct PhantomView {
    /// `frontal` or `lateral`.
    pub view: &'static str,
    /// 12-bit stored values, row-major, as written to the file.
    pub stored: Vec<u16>,
    pub monochrome1: bool,
    pub window: Option<Window>,
    /// The lesion mask, row-major, same size as the image.
    pub mask: Vec<bool>,
}

/// The radiological features drawn for a case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    /// 0 sharp with rim, 1 sharp, 2 ill-defined, 3 permeative.
    pub margin: u8,
    pub cortical_breach: bool,
    pub periosteal_aggressive: bool,
    pub soft_tissue_mass: bool,
}

/// One generated case.
#[derive(Debug, Clone)]
pub struct PhantomCase {
    pub case_id: String,
    pub patient_id: String,
    /// The recorded label (after label noise).
    pub label: Label,
    /// The class the image was drawn from.
    pub drawn_malignant: bool,
    pub features: Features,
    pub clinical: Clinical,
    pub width: usize,
    pub height: usize,
    pub views: Vec<PhantomView>,
}

fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    rng.gen_bool(p.clamp(0.0, 1.0))
}

/// A value in `[0, 1)` for an integer lattice point, from a seed.
fn lattice(seed: u64, ix: i64, iy: i64) -> f32 {
    let mut h = seed
        ^ (ix as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (iy as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^= h >> 33;
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// Smooth value noise in `[0, 1)`: the lattice values, interpolated.
fn value_noise(seed: u64, x: f32, y: f32) -> f32 {
    let (fx, fy) = (x.floor(), y.floor());
    let (ix, iy) = (fx as i64, fy as i64);
    let (tx, ty) = (smoothstep(0.0, 1.0, x - fx), smoothstep(0.0, 1.0, y - fy));
    let top = lattice(seed, ix, iy) * (1.0 - tx) + lattice(seed, ix + 1, iy) * tx;
    let bottom = lattice(seed, ix, iy + 1) * (1.0 - tx) + lattice(seed, ix + 1, iy + 1) * tx;
    top * (1.0 - ty) + bottom * ty
}

/// What a realistic view adds to the anatomy, drawn once per view.
struct Realism {
    seed: u64,
    /// The trabecular cells' size across and along the shaft, in pixels.
    cell: (f32, f32),
    /// The collimator's field: left, right, top, bottom edges in pixels.
    field: [f32; 4],
    /// The soft edge of the field, in pixels.
    penumbra: f32,
    /// The lead marker's top-left corner and letter height, in pixels.
    marker: (f32, f32, f32),
    /// The thickness of the subcutaneous fat, as a share of the soft tissue.
    fat: f32,
}

impl Realism {
    fn draw(w: f32, h: f32, rng: &mut ChaCha8Rng) -> Realism {
        let field = [
            w * rng.gen_range(0.03..0.09),
            w * (1.0 - rng.gen_range(0.03..0.09)),
            h * rng.gen_range(0.02..0.06),
            h * (1.0 - rng.gen_range(0.02..0.06)),
        ];
        let letter = h * rng.gen_range(0.03..0.04);
        let inset = w * 0.03;
        let x = if chance(rng, 0.5) {
            field[0] + inset
        } else {
            field[1] - inset - letter * 0.7
        };
        Realism {
            seed: rng.gen(),
            cell: (
                w / rng.gen_range(100.0..130.0),
                w / rng.gen_range(35.0..45.0),
            ),
            field,
            penumbra: (w * 0.002).max(0.7),
            marker: (x, field[2] + inset, letter),
            fat: rng.gen_range(0.12..0.2),
        }
    }

    /// Trabecular bone at `(x, y)`: ridged noise of three octaves, in `[0, 1]`
    /// (bright where struts cross).
    fn trabecular(&self, x: f32, y: f32) -> f32 {
        let (mut sum, mut amp, mut norm) = (0.0, 1.0, 0.0);
        for octave in 0..3u64 {
            let f = (1u32 << octave) as f32;
            let n = value_noise(
                self.seed.wrapping_add(octave),
                x * f / self.cell.0,
                y * f / self.cell.1,
            );
            let ridge = 1.0 - (2.0 * n - 1.0).abs();
            sum += amp * ridge * ridge;
            norm += amp;
            amp *= 0.55;
        }
        sum / norm
    }

    /// How much of the beam reaches `(x, y)`: 1 inside the field, 0 beyond
    /// its soft edge.
    fn exposed(&self, x: f32, y: f32) -> f32 {
        let p = self.penumbra;
        let [l, r, t, b] = self.field;
        smoothstep(l - p, l + p, x)
            * (1.0 - smoothstep(r - p, r + p, x))
            * smoothstep(t - p, t + p, y)
            * (1.0 - smoothstep(b - p, b + p, y))
    }

    /// Whether `(x, y)` lies on the lead letter "L".
    fn on_marker(&self, x: f32, y: f32) -> bool {
        let (mx, my, size) = self.marker;
        let stroke = size * 0.2;
        let (u, v) = (x - mx, y - my);
        (0.0..size * 0.7).contains(&u)
            && (0.0..size).contains(&v)
            && (u < stroke || v > size - stroke)
    }
}

/// The window every phantom file carries: the whole 12-bit range.
const FULL_WINDOW: Window = Window {
    centre: 2048.0,
    width: 4096.0,
};

/// A brightness in `[0, 1]` (clamped) as a 12-bit stored value, with the
/// detector's floor and headroom.
fn stored_value(brightness: f32) -> u16 {
    (brightness.clamp(0.0, 1.0) * 3400.0 + 300.0).round() as u16
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// The lesion's geometry, shared by both views (the lateral view sees it at
/// another position across the bone).
struct Lesion {
    y: f32,
    half_len: f32,
    /// Position across the bone in the frontal and lateral view, −1..1.
    across: [f32; 2],
    half_width_frac: f32,
    /// Which side the breach, reaction and mass are on, per view (−1 or 1).
    side: [f32; 2],
    depth: f32,
}

struct Anatomy {
    centre: f32,
    radius: f32,
    cortex: f32,
    flare_top: bool,
    soft_half: f32,
}

impl Anatomy {
    fn radius_at(&self, y: f32, height: f32) -> f32 {
        let t = if self.flare_top {
            y / height
        } else {
            1.0 - y / height
        };
        // The metaphysis widens over the last fifth of the bone.
        self.radius * (1.0 + 0.7 * (1.0 - smoothstep(0.0, 0.22, t)))
    }
}

/// Draws `n` cases, deterministic for a seed.
pub fn generate(n: usize, config: &PhantomConfig) -> Vec<PhantomCase> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    (0..n).map(|i| generate_one(i, config, &mut rng)).collect()
}

fn generate_one(index: usize, config: &PhantomConfig, rng: &mut ChaCha8Rng) -> PhantomCase {
    let malignant = chance(rng, config.shift.malignant_share);
    let (w, h) = (config.width as f32, config.height as f32);
    // The site's spectrum moves the margin's draw toward the overt end of
    // each class (permeative if malignant, sclerotic if benign) or away
    // from it, and scales how often a malignant lesion shows an aggressive
    // feature and a benign one shows it anyway. At 0 the draws are as
    // without a shift, number for number.
    let spectrum = config.shift.spectrum;
    let overt = |u: u32, toward_high: bool| -> u32 {
        let step = if toward_high { 45.0 } else { -40.0 };
        let moved = f64::from(u) + step * spectrum;
        moved.clamp(0.0, 99.0) as u32
    };
    let margin = if malignant {
        match overt(rng.gen_range(0..100), true) {
            0..=9 => 1,
            10..=54 => 2,
            _ => 3,
        }
    } else {
        match overt(rng.gen_range(0..100), false) {
            0..=59 => 0,
            60..=87 => 1,
            _ => 2,
        }
    };
    let aggressive = |p_malignant: f64, p_benign: f64| -> f64 {
        if malignant {
            (p_malignant * (1.0 + 0.4 * spectrum)).min(0.95)
        } else {
            p_benign * (1.0 - 0.5 * spectrum)
        }
    };
    let features = Features {
        margin,
        cortical_breach: chance(rng, aggressive(0.8, 0.08)),
        periosteal_aggressive: chance(rng, aggressive(0.7, 0.05)),
        soft_tissue_mass: chance(rng, aggressive(0.6, 0.04)),
    };
    let lesion = Lesion {
        y: h * rng.gen_range(0.3..0.7),
        half_len: h * if malignant {
            rng.gen_range(0.07..0.13)
        } else {
            rng.gen_range(0.05..0.1)
        },
        across: [rng.gen_range(-0.35..0.35), rng.gen_range(-0.35..0.35)],
        half_width_frac: rng.gen_range(0.45..0.7),
        side: [
            if chance(rng, 0.5) { 1.0 } else { -1.0 },
            if chance(rng, 0.5) { 1.0 } else { -1.0 },
        ],
        depth: rng.gen_range(0.45..0.7),
    };
    let flare_top = chance(rng, 0.5);
    let views = ["frontal", "lateral"]
        .iter()
        .enumerate()
        .map(|(v, &name)| {
            let anatomy = Anatomy {
                centre: w * (0.5 + rng.gen_range(-0.06..0.06)),
                radius: w * rng.gen_range(0.08..0.11) * if v == 1 { 0.92 } else { 1.0 },
                cortex: rng.gen_range(0.25..0.38),
                flare_top,
                soft_half: w * rng.gen_range(0.28..0.36),
            };
            draw_view(name, v, config, &anatomy, &lesion, &features, rng)
        })
        .collect();
    let recorded_malignant = if chance(rng, config.label_noise) {
        !malignant
    } else {
        malignant
    };
    let clinical = draw_clinical(malignant, &features, spectrum, rng);
    PhantomCase {
        case_id: format!("PH-{:05}", index + 1),
        patient_id: format!("PP-{:05}", index + 1),
        label: if recorded_malignant {
            Label::Malignant
        } else {
            Label::Benign
        },
        drawn_malignant: malignant,
        features,
        clinical,
        width: config.width,
        height: config.height,
        views,
    }
}

#[allow(clippy::too_many_arguments)]
fn draw_view(
    name: &'static str,
    v: usize,
    config: &PhantomConfig,
    a: &Anatomy,
    l: &Lesion,
    f: &Features,
    rng: &mut ChaCha8Rng,
) -> PhantomView {
    let (wi, hi) = (config.width, config.height);
    let (w, h) = (wi as f32, hi as f32);
    let side = l.side[v];
    let mut img = vec![0.0f32; wi * hi];
    let mut mask = vec![false; wi * hi];
    // Permeative holes: small dark spots scattered around the lesion.
    let holes: Vec<(f32, f32, f32)> = if f.margin == 3 {
        (0..120)
            .map(|_| {
                (
                    l.y + l.half_len * rng.gen_range(-1.5..1.5),
                    rng.gen_range(-1.0..1.0),
                    rng.gen_range(0.8..2.0) * (w / 192.0).max(0.5),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    // Spicules of an aggressive periosteal reaction: rays out of the cortex.
    let spicules: Vec<f32> = if f.periosteal_aggressive {
        (0..((l.half_len * 2.0 / 4.0).max(4.0) as usize))
            .map(|_| l.y + l.half_len * rng.gen_range(-1.0..1.0))
            .collect()
    } else {
        Vec::new()
    };
    let spicule_len = a.radius * rng.gen_range(0.5..0.9);
    let mass_r = [
        a.radius * rng.gen_range(0.9..1.4),
        l.half_len * rng.gen_range(1.0..1.5),
    ];
    let gain = rng.gen_range(0.85..1.15f32);
    let tilt = rng.gen_range(-0.08..0.08f32);
    let real = config.realistic.then(|| Realism::draw(w, h, rng));
    for yi in 0..hi {
        let y = yi as f32;
        let r = a.radius_at(y, h);
        let centre = a.centre + tilt * (y - h / 2.0) * 0.2;
        let lesion_row = ((y - l.y) / l.half_len).abs();
        for xi in 0..wi {
            let x = xi as f32;
            let dx = x - centre;
            let d = dx.abs();
            // Soft tissue with a smooth skin edge.
            let mut b = 0.05 + 0.27 * (1.0 - smoothstep(a.soft_half - 4.0, a.soft_half + 4.0, d));
            if let Some(real) = &real {
                // Muscle, a darker band of fat under the skin, the skin line.
                let edge = (w * 0.004).max(1.0);
                let inside = 1.0 - smoothstep(a.soft_half - edge, a.soft_half + edge, d);
                let fat_from = a.soft_half * (1.0 - real.fat);
                let fat = smoothstep(fat_from - edge * 3.0, fat_from + edge * 3.0, d);
                let skin = (1.0 - ((d - a.soft_half + edge * 1.5) / edge).abs()).max(0.0);
                let grain = value_noise(real.seed ^ 0x55, x / real.cell.1, y / real.cell.1);
                b = 0.05 + inside * (0.3 - 0.09 * fat + 0.03 * (grain - 0.5)) + 0.05 * skin;
            }
            let across = dx / r; // −1..1 inside the bone
            let in_bone = d < r;
            let on_side = dx * side > 0.0;
            // Lesion: an ellipse inside the bone, its centre `across` the bone.
            let lx = centre + l.across[v] * r * 0.5;
            let ex = (x - lx) / (r * l.half_width_frac);
            let ey = (y - l.y) / l.half_len;
            let rho = (ex * ex + ey * ey).sqrt();
            let lesion = config.lesion;
            let breach_here = lesion && f.cortical_breach && on_side && lesion_row < 0.8;
            if in_bone {
                let cortex = d > r * (1.0 - a.cortex);
                b = if cortex && !breach_here {
                    0.92
                } else {
                    0.6 - 0.05 * across.abs()
                };
                if let Some(real) = &real {
                    b = if cortex && !breach_here {
                        // Brightest halfway through, where the beam runs
                        // along the most cortical bone.
                        let t = (d - r * (1.0 - a.cortex)) / (r * a.cortex);
                        0.84 + 0.1 * (1.0 - (2.0 * t - 1.0).abs())
                    } else {
                        (0.56 - 0.05 * across.abs()) * (0.86 + 0.3 * real.trabecular(x, y))
                    };
                }
                // Lucency of the lesion, by margin type.
                let lucency = if !lesion {
                    0.0
                } else {
                    match f.margin {
                        0 | 1 => f32::from(u8::from(rho < 1.0)),
                        2 => 1.0 - smoothstep(0.6, 1.6, rho),
                        _ => 0.6 * (1.0 - smoothstep(0.5, 1.3, rho)),
                    }
                };
                b -= l.depth * lucency * b;
                if lesion && f.margin == 0 && (0.92..1.12).contains(&rho) {
                    b = b.max(0.95); // sclerotic rim
                }
                for &(hy, hx, hr) in holes.iter().filter(|_| lesion) {
                    let hxp = centre + hx * r;
                    if (x - hxp).powi(2) + (y - hy).powi(2) < hr * hr {
                        b *= 0.45;
                    }
                }
            } else if lesion && on_side && lesion_row < 1.2 {
                // Aggressive periosteal reaction: thin bright rays.
                let out = d - r;
                if out < spicule_len {
                    for &sy in &spicules {
                        if (y - sy).abs() < 1.2 {
                            b = b.max(0.8 - 0.4 * out / spicule_len);
                        }
                    }
                }
            }
            // Soft-tissue mass beside the lesion.
            if lesion && f.soft_tissue_mass && !in_bone && on_side {
                let mx = (d - r) / mass_r[0];
                let my = (y - l.y) / mass_r[1];
                if mx * mx + my * my < 1.0 {
                    b += 0.25;
                }
            }
            let lesion_zone = rho < if f.margin >= 2 { 1.4 } else { 1.15 };
            let reaction_zone =
                (f.periosteal_aggressive || f.soft_tissue_mass || f.cortical_breach)
                    && on_side
                    && lesion_row < 1.3
                    && d < r + spicule_len.max(mass_r[0]) * 1.1;
            let mut on_lesion = lesion_zone || reaction_zone;
            if let Some(real) = &real {
                // Outside the collimator's field nothing reaches the
                // detector: it shows as bright as bone, and so does lead.
                let exposed = real.exposed(x, y);
                b = b * exposed + 0.9 * (1.0 - exposed);
                if real.on_marker(x, y) {
                    b = 1.0;
                }
                on_lesion &= exposed > 0.5;
            }
            mask[yi * wi + xi] = on_lesion;
            img[yi * wi + xi] = b * gain;
        }
    }
    // Quantum noise and an exposure gradient.
    let grad = rng.gen_range(-0.05..0.05f32);
    let monochrome1 = chance(rng, 0.5);
    // The site's shift draws from its own generator, so that an unshifted
    // set is exactly what it was before shifts existed.
    let shift = config.shift;
    let mut site_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5173_u64 ^ ((v as u64) << 32));
    let stored: Vec<u16> = img
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let y = (i / wi) as f32 / h;
            let noise: f32 = (0..3).map(|_| rng.gen_range(-0.02..0.02f32)).sum();
            let mut b = b + grad * y + noise;
            if shift.contrast != 1.0 {
                b = 0.5 + (b - 0.5) * shift.contrast;
            }
            if shift.noise > 0.0 {
                b += site_rng.gen_range(-shift.noise..shift.noise);
            }
            let v = stored_value(b);
            if monochrome1 {
                4095 - v
            } else {
                v
            }
        })
        .collect();
    // Every phantom carries its window, as CR files do: without one the
    // percentile fallback would make the whole image's brightness depend on
    // the lesion, a global cue no network should learn from.
    let window = Some(FULL_WINDOW);
    PhantomView {
        view: name,
        stored,
        monochrome1,
        window,
        mask,
    }
}

/// A chest radiograph (posteroanterior, then lateral) in place of a case's
/// bone views: what a model of bone tumours has never seen, for testing the
/// out-of-domain flag ([`crate::domain`]). The case's other fields are those
/// of [`generate`]'s first case for the seed; the masks are empty.
pub fn chest_radiograph(config: &PhantomConfig) -> PhantomCase {
    let mut case = generate(1, config).remove(0);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xC4E5);
    let (wi, hi) = (config.width, config.height);
    let (w, h) = (wi as f32, hi as f32);
    case.views = ["frontal", "lateral"]
        .into_iter()
        .enumerate()
        .map(|(v, name)| {
            let lateral = v == 1;
            let body = w * if lateral { 0.36 } else { 0.44 };
            let lung_w = w * if lateral { 0.3 } else { 0.16 };
            let lung_x = if lateral {
                vec![0.5 * w]
            } else {
                vec![0.31 * w, 0.69 * w]
            };
            let dome = h * rng.gen_range(0.72..0.8);
            let rib_gap = h * rng.gen_range(0.055..0.065);
            let mut stored = Vec::with_capacity(wi * hi);
            for yi in 0..hi {
                let y = yi as f32;
                for xi in 0..wi {
                    let x = xi as f32;
                    let dx = (x - 0.5 * w).abs();
                    // Soft tissue of the trunk, the lungs dark inside it.
                    let mut b = if dx < body { 0.42 } else { 0.04 };
                    for &lx in &lung_x {
                        let ex = (x - lx) / lung_w;
                        let ey = (y - 0.45 * h) / (0.33 * h);
                        let below_dome = y > dome - 0.06 * h * (1.0 - ex * ex);
                        if ex * ex + ey * ey < 1.0 && !below_dome {
                            b = 0.12 + 0.04 * (1.0 - (ex * ex + ey * ey));
                        }
                    }
                    // Spine and mediastinum; the heart to the patient's left.
                    if !lateral && dx < w * 0.05 {
                        b = b.max(0.6);
                    }
                    if !lateral
                        && (x - 0.56 * w).powi(2) / (0.13 * w).powi(2)
                            + (y - 0.62 * h).powi(2) / (0.12 * h).powi(2)
                            < 1.0
                    {
                        b = b.max(0.5);
                    }
                    if lateral && x > 0.72 * w && dx < body {
                        b = b.max(0.62);
                    }
                    // Ribs: bright arcs down the chest wall.
                    if dx < body && y > 0.12 * h && y < dome {
                        let arc = y - 0.18 * h * (dx / body).powi(2);
                        let phase = (arc / rib_gap).fract();
                        if phase < 0.22 {
                            b += 0.18;
                        }
                    }
                    // The clavicles.
                    if !lateral
                        && (y - 0.14 * h - 0.05 * h * (dx / body)).abs() < h * 0.012
                        && dx > w * 0.04
                        && dx < body * 0.8
                    {
                        b = b.max(0.75);
                    }
                    let noise: f32 = (0..3).map(|_| rng.gen_range(-0.02..0.02f32)).sum();
                    stored.push(stored_value(b + noise));
                }
            }
            PhantomView {
                view: name,
                stored,
                monochrome1: false,
                window: Some(FULL_WINDOW),
                mask: vec![false; wi * hi],
            }
        })
        .collect();
    case
}

fn draw_clinical(malignant: bool, f: &Features, spectrum: f64, rng: &mut ChaCha8Rng) -> Clinical {
    // A malignant lesion is a primary sarcoma of the young or, later in
    // life, a metastasis or myeloma. A sarcoma centre (spectrum toward 1)
    // sees more of the first, a general hospital (toward -1) more of the
    // second, so age points the other way from one to the other.
    let sarcoma = (0.4 + 0.35 * spectrum).clamp(0.05, 0.95);
    let age: f32 = if malignant {
        if chance(rng, sarcoma) {
            rng.gen_range(10.0..26.0)
        } else {
            rng.gen_range(40.0..82.0)
        }
    } else {
        rng.gen_range(8.0..50.0)
    };
    let mut symptoms = Vec::new();
    if chance(rng, if malignant { 0.85 } else { 0.5 }) {
        symptoms.push(crate::clinical::Symptom::Pain);
    }
    if chance(rng, if malignant { 0.45 } else { 0.12 }) {
        symptoms.push(crate::clinical::Symptom::NightPain);
    }
    if f.soft_tissue_mass && chance(rng, 0.7) {
        symptoms.push(crate::clinical::Symptom::PalpableMass);
    }
    if chance(rng, if malignant { 0.4 } else { 0.1 }) {
        symptoms.push(crate::clinical::Symptom::Swelling);
    }
    let fracture = chance(rng, if malignant { 0.15 } else { 0.05 });
    let primary = chance(rng, if malignant && age > 40.0 { 0.45 } else { 0.03 });
    // Bone-RADS as a reader would score it (acr-2023-stm4), with the margin
    // graded one step off a fifth of the time.
    let mut margin = f.margin;
    if chance(rng, 0.2) {
        margin = if chance(rng, 0.5) {
            margin.saturating_sub(1)
        } else {
            (margin + 1).min(3)
        };
    }
    let mut points = [1u8, 3, 5, 7][usize::from(margin)];
    if f.periosteal_aggressive {
        points += 4;
    }
    if f.cortical_breach {
        points += 2;
    }
    if fracture {
        points += 2;
    }
    if f.soft_tissue_mass {
        points += 4;
    }
    if primary {
        points += 2;
    }
    let category = match points {
        0..=2 => 1,
        3..=4 => 2,
        5..=6 => 3,
        _ => 4,
    };
    use crate::clinical::{Bone, Longitudinal, Sex};
    let bone = [
        Bone::Femur,
        Bone::Femur,
        Bone::Tibia,
        Bone::Tibia,
        Bone::Humerus,
        Bone::Fibula,
    ][rng.gen_range(0..6)];
    let longitudinal = [
        Longitudinal::Metaphysis,
        Longitudinal::Metaphysis,
        Longitudinal::Metadiaphysis,
        Longitudinal::Diaphysis,
        Longitudinal::Epiphysis,
    ][rng.gen_range(0..5)];
    Clinical {
        age_years: Some(age.round()),
        sex: Some(if chance(rng, 0.5) {
            Sex::Female
        } else {
            Sex::Male
        }),
        bone: Some(bone),
        longitudinal: Some(longitudinal),
        symptoms,
        pathological_fracture: Some(fracture),
        known_primary_malignancy: Some(primary),
        bone_rads_points: Some(f32::from(points)),
        bone_rads_category: Some(category),
    }
}

impl PhantomView {
    /// The view as display intensities (steps 1–3 of the pixel pipeline).
    pub fn grey(&self, width: usize, height: usize) -> Grey {
        let stored: Vec<f64> = self.stored.iter().map(|&s| f64::from(s)).collect();
        Grey::from_stored(
            width,
            height,
            &stored,
            (1.0, 0.0),
            self.window,
            self.monochrome1,
        )
        .expect("a phantom has pixels")
    }
}

impl PhantomCase {
    /// Every view as display intensities ([`PhantomView::grey`]).
    pub fn greys(&self) -> Vec<Grey> {
        self.views
            .iter()
            .map(|v| v.grey(self.width, self.height))
            .collect()
    }

    /// The Part 10 file of view `v`.
    pub fn dicom(&self, v: usize) -> Result<Vec<u8>, ModelError> {
        let view = &self.views[v];
        let mut obj = InMemDicomObject::new_empty();
        let uid = |kind: u32| {
            format!(
                "2.25.{}{:05}{}{}",
                7_310_000 + kind,
                case_number(&self.case_id),
                v,
                kind
            )
        };
        let sop_uid = uid(3);
        let text = |obj: &mut InMemDicomObject, g: u16, e: u16, vr: VR, s: &str| {
            obj.put(DataElement::new(Tag(g, e), vr, PrimitiveValue::from(s)));
        };
        text(&mut obj, 0x0008, 0x0016, VR::UI, CR_IMAGE_STORAGE);
        text(&mut obj, 0x0008, 0x0018, VR::UI, &sop_uid);
        text(&mut obj, 0x0008, 0x0060, VR::CS, "CR");
        text(
            &mut obj,
            0x0008,
            0x0070,
            VR::LO,
            "Osteo EDC phantom generator",
        );
        text(
            &mut obj,
            0x0008,
            0x1030,
            VR::LO,
            "Synthetic radiograph phantom",
        );
        text(
            &mut obj,
            0x0010,
            0x0010,
            VR::PN,
            &format!("PHANTOM^{}", self.patient_id),
        );
        text(&mut obj, 0x0010, 0x0020, VR::LO, &self.patient_id);
        // The Type 2 attributes of the CR image IOD (PS3.3 A.2): present,
        // empty where a phantom has nothing to say.
        text(&mut obj, 0x0010, 0x0030, VR::DA, "");
        text(
            &mut obj,
            0x0010,
            0x0040,
            VR::CS,
            match self.clinical.sex {
                Some(crate::clinical::Sex::Female) => "F",
                Some(crate::clinical::Sex::Male) => "M",
                None => "",
            },
        );
        text(&mut obj, 0x0008, 0x0020, VR::DA, "");
        text(&mut obj, 0x0008, 0x0030, VR::TM, "");
        text(&mut obj, 0x0008, 0x0050, VR::SH, "");
        text(&mut obj, 0x0008, 0x0090, VR::PN, "");
        text(&mut obj, 0x0020, 0x0010, VR::SH, "");
        text(&mut obj, 0x0020, 0x0011, VR::IS, "1");
        text(&mut obj, 0x0020, 0x0013, VR::IS, &(v + 1).to_string());
        text(&mut obj, 0x0020, 0x0020, VR::CS, "");
        let bone = self
            .clinical
            .bone
            .map_or("femur", |b| b.as_str())
            .to_uppercase();
        text(&mut obj, 0x0018, 0x0015, VR::CS, &bone);
        text(
            &mut obj,
            0x0018,
            0x5101,
            VR::CS,
            if view.view == "frontal" { "AP" } else { "LL" },
        );
        text(&mut obj, 0x0020, 0x000D, VR::UI, &uid(1));
        text(&mut obj, 0x0020, 0x000E, VR::UI, &uid(2));
        text(&mut obj, 0x0020, 0x0062, VR::CS, "L");
        text(
            &mut obj,
            0x0028,
            0x0004,
            VR::CS,
            if view.monochrome1 {
                "MONOCHROME1"
            } else {
                "MONOCHROME2"
            },
        );
        text(&mut obj, 0x0028, 0x0030, VR::DS, "0.2\\0.2");
        text(&mut obj, 0x0028, 0x1052, VR::DS, "0");
        text(&mut obj, 0x0028, 0x1053, VR::DS, "1");
        // Required with a rescale (the Modality LUT macro): unspecified units.
        text(&mut obj, 0x0028, 0x1054, VR::LO, "US");
        if let Some(w) = view.window {
            text(&mut obj, 0x0028, 0x1050, VR::DS, &format!("{}", w.centre));
            text(&mut obj, 0x0028, 0x1051, VR::DS, &format!("{}", w.width));
        }
        let rows =
            u16::try_from(self.height).map_err(|_| ModelError::Image("image too tall".into()))?;
        let cols =
            u16::try_from(self.width).map_err(|_| ModelError::Image("image too wide".into()))?;
        for (e, value) in [
            (0x0002u16, 1u16),
            (0x0010, rows),
            (0x0011, cols),
            (0x0100, 16),
            (0x0101, 12),
            (0x0102, 11),
            (0x0103, 0),
        ] {
            obj.put(DataElement::new(
                Tag(0x0028, e),
                VR::US,
                PrimitiveValue::from(value),
            ));
        }
        obj.put(DataElement::new(
            Tag(0x7FE0, 0x0010),
            VR::OW,
            PrimitiveValue::U16(view.stored.iter().copied().collect()),
        ));
        let file = obj
            .with_meta(
                FileMetaTableBuilder::new()
                    .transfer_syntax(EXPLICIT_VR_LE)
                    .media_storage_sop_class_uid(CR_IMAGE_STORAGE)
                    .media_storage_sop_instance_uid(sop_uid),
            )
            .map_err(|e| ModelError::Image(e.to_string()))?;
        let mut out = Vec::new();
        file.write_all(&mut out)
            .map_err(|e| ModelError::Image(e.to_string()))?;
        Ok(out)
    }

    /// The manifest row, with image and mask paths relative to the images folder.
    pub fn manifest_row(&self) -> ManifestRow {
        let path = |v: &str, ext: &str| format!("{}/{}.{}", self.case_id, v, ext);
        ManifestRow {
            case_id: self.case_id.clone(),
            patient_id: self.patient_id.clone(),
            label: self.label,
            frontal: Some(path("frontal", "dcm")),
            lateral: Some(path("lateral", "dcm")),
            oblique: None,
            mask_frontal: Some(path("frontal-mask", "png")),
            mask_lateral: Some(path("lateral-mask", "png")),
            clinical: self.clinical.clone(),
        }
    }

    /// Writes the views (DICOM) and the masks (PNG) under `dir/<case id>/`.
    pub fn write(&self, dir: &Path) -> Result<(), ModelError> {
        let case_dir = dir.join(&self.case_id);
        std::fs::create_dir_all(&case_dir).map_err(|e| ModelError::file(&case_dir, e))?;
        for (v, view) in self.views.iter().enumerate() {
            let file = case_dir.join(format!("{}.dcm", view.view));
            std::fs::write(&file, self.dicom(v)?).map_err(|e| ModelError::file(&file, e))?;
            let mask = image::GrayImage::from_fn(self.width as u32, self.height as u32, |x, y| {
                image::Luma([if view.mask[y as usize * self.width + x as usize] {
                    255
                } else {
                    0
                }])
            });
            let file = case_dir.join(format!("{}-mask.png", view.view));
            mask.save(&file).map_err(|e| ModelError::file(&file, e))?;
        }
        Ok(())
    }
}

fn case_number(id: &str) -> u32 {
    id.trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or(0)
}

/// Writes `n` phantoms and their `manifest.csv` into `out`.
pub fn write_set(
    n: usize,
    config: &PhantomConfig,
    out: &Path,
) -> Result<Vec<PhantomCase>, ModelError> {
    let cases = generate(n, config);
    std::fs::create_dir_all(out).map_err(|e| ModelError::file(out, e))?;
    for case in &cases {
        case.write(out)?;
    }
    let rows: Vec<ManifestRow> = cases.iter().map(PhantomCase::manifest_row).collect();
    crate::manifest::write(&out.join("manifest.csv"), &rows)?;
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phantoms_are_deterministic_and_both_classes_appear() {
        let cfg = PhantomConfig {
            width: 48,
            height: 64,
            seed: 7,
            ..PhantomConfig::default()
        };
        let a = generate(30, &cfg);
        let b = generate(30, &cfg);
        assert_eq!(a[3].views[0].stored, b[3].views[0].stored);
        let malignant = a.iter().filter(|c| c.drawn_malignant).count();
        assert!(malignant > 3 && malignant < 27, "{malignant}");
        for c in &a {
            assert_eq!(c.views.len(), 2);
            assert!(
                c.views.iter().all(|v| v.mask.iter().any(|&m| m)),
                "{} has a lesion",
                c.case_id
            );
            assert!(c.views.iter().all(|v| v.stored.iter().all(|&s| s < 4096)));
        }
    }

    #[test]
    fn a_sites_spectrum_moves_how_overt_each_class_looks() {
        let at = |spectrum: f64| {
            let cfg = PhantomConfig {
                width: 32,
                height: 40,
                seed: 11,
                shift: SiteShift {
                    spectrum,
                    ..SiteShift::default()
                },
                ..PhantomConfig::default()
            };
            generate(400, &cfg)
        };
        // Overt: a malignant lesion is permeative or breaches the cortex; a
        // benign one has a sclerotic rim (margin 0).
        let overt = |cases: &[PhantomCase]| {
            let malignant: Vec<_> = cases.iter().filter(|c| c.drawn_malignant).collect();
            let benign: Vec<_> = cases.iter().filter(|c| !c.drawn_malignant).collect();
            let share = |n: usize, of: usize| n as f64 / of as f64;
            (
                share(
                    malignant.iter().filter(|c| c.features.margin == 3).count(),
                    malignant.len(),
                ),
                share(
                    malignant
                        .iter()
                        .filter(|c| c.features.periosteal_aggressive)
                        .count(),
                    malignant.len(),
                ),
                share(
                    benign.iter().filter(|c| c.features.margin == 0).count(),
                    benign.len(),
                ),
            )
        };
        let malignant_age = |cases: &[PhantomCase]| {
            let ages: Vec<f32> = cases
                .iter()
                .filter(|c| c.drawn_malignant)
                .filter_map(|c| c.clinical.age_years)
                .collect();
            ages.iter().sum::<f32>() / ages.len() as f32
        };
        let (general_cases, referral_cases) = (at(-1.0), at(1.0));
        let (old, young) = (
            malignant_age(&general_cases),
            malignant_age(&referral_cases),
        );
        assert!(old > 50.0 && young < 35.0, "{old} {young}");
        let (general, drawn, referral) = (
            overt(&general_cases),
            overt(&at(0.0)),
            overt(&referral_cases),
        );
        assert!(
            general.0 + 0.2 < drawn.0 && drawn.0 + 0.2 < referral.0,
            "{general:?} {drawn:?} {referral:?}"
        );
        assert!(
            general.1 + 0.15 < drawn.1 && drawn.1 + 0.15 < referral.1,
            "{general:?} {drawn:?} {referral:?}"
        );
        assert!(
            general.2 + 0.2 < drawn.2 && drawn.2 + 0.2 < referral.2,
            "{general:?} {drawn:?} {referral:?}"
        );
    }

    #[test]
    fn phantom_file_reads_back_through_the_pipeline() {
        let cfg = PhantomConfig {
            width: 40,
            height: 56,
            seed: 3,
            ..PhantomConfig::default()
        };
        let case = &generate(1, &cfg)[0];
        let bytes = case.dicom(0).expect("encodes");
        let obj = dicom_object::OpenFileOptions::new()
            .from_reader(std::io::Cursor::new(&bytes))
            .expect("parses");
        let grey = Grey::from_dicom(&obj).expect("decodes");
        assert_eq!((grey.width, grey.height), (40, 56));
        assert_eq!(grey, case.views[0].grey(40, 56));
        // Bone (the centre column) is brighter than air (the edge) whatever the photometric interpretation.
        let row = 28 * 40;
        assert!(grey.values[row + 20] > grey.values[row] + 0.2);
    }
}
