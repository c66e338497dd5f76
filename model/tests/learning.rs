//! It learns, and it points at the lesion: training on generated phantoms,
//! sized for a 2-core CPU.
//!
//! - held-out AUC ≥ 0.90;
//! - a negative control: the same training with the labels shuffled
//!   relative to the cases does not exceed 0.6 on the held-out cases (so
//!   the learning test can fail);
//! - for malignant phantoms, the heat map's peak lies inside the lesion mask
//!   in at least 80% of the views.
//!
//! The learning test and the heat-map test share one trained model.

use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use osteo_model::data::{self, Sample};
use osteo_model::infer::{self, Predictor};
use osteo_model::net::NetConfig;
use osteo_model::phantom::{self, PhantomCase, PhantomConfig};
use osteo_model::train::{self, TrainConfig, TrainingSet};
use osteo_model::ManifestRow;

const SIZE: usize = 96;

fn net() -> NetConfig {
    NetConfig::new()
        .with_image_size(SIZE)
        .with_channels(vec![8, 16, 32])
        .with_attention_hidden(16)
        .with_clinical_hidden(16)
        .with_fusion_hidden(32)
}

fn training() -> TrainConfig {
    TrainConfig::new()
        .with_epochs(30)
        .with_batch_size(16)
        .with_patience(8)
        .with_warmup_epochs(10)
        .with_seed(11)
}

fn phantoms(n: usize, seed: u64, dir: &Path) -> (Vec<ManifestRow>, Vec<PhantomCase>) {
    let cfg = PhantomConfig {
        width: 96,
        height: 128,
        seed,
        ..PhantomConfig::default()
    };
    let cases = phantom::write_set(n, &cfg, dir).expect("phantoms written");
    let rows = osteo_model::manifest::read(&dir.join("manifest.csv")).expect("manifest reads");
    (rows, cases)
}

fn train_on(samples: &[Sample], out: &Path) -> Predictor {
    let set = TrainingSet {
        samples,
        manifest_sha256: "0".repeat(64),
        description: "test phantoms".into(),
        demo: true,
        record: None,
    };
    let started = Instant::now();
    let card = train::train(&set, &net(), &training(), out, false, &mut |e| {
        if let train::Event::Epoch(m) = e {
            eprintln!(
                "epoch {} loss {:.4} val AUC {:.3} ({:.0} s)",
                m.epoch,
                m.train_loss,
                m.validation_auc,
                started.elapsed().as_secs_f64()
            );
        }
    })
    .expect("training runs");
    eprintln!(
        "card: val AUC {:.3}, T {:.3}, threshold {:.3}",
        card.validation_auc, card.temperature, card.threshold
    );
    Predictor::open(out, &burn::tensor::Device::flex()).expect("model opens")
}

/// Train on 240 phantoms, test on 120 others.
fn setup(tmp: &Path) -> (Vec<Sample>, Vec<ManifestRow>, Vec<PhantomCase>) {
    let (train_rows, _) = phantoms(240, 101, &tmp.join("train"));
    let (test_rows, test_cases) = phantoms(120, 202, &tmp.join("test"));
    let samples = data::load(&train_rows, &tmp.join("train"), SIZE).expect("loads");
    (samples, test_rows, test_cases)
}

/// The model trained on [`setup`]'s phantoms, trained once for the tests of
/// this file.
struct Trained {
    tmp: tempfile::TempDir,
    samples: Vec<Sample>,
    test_rows: Vec<ManifestRow>,
    test_cases: Vec<PhantomCase>,
    predictor: Predictor,
}

fn trained() -> std::sync::MutexGuard<'static, Trained> {
    static TRAINED: OnceLock<Mutex<Trained>> = OnceLock::new();
    TRAINED
        .get_or_init(|| {
            let tmp = tempfile::tempdir().expect("tmp");
            let (samples, test_rows, test_cases) = setup(tmp.path());
            let predictor = train_on(&samples, &tmp.path().join("model"));
            Mutex::new(Trained {
                tmp,
                samples,
                test_rows,
                test_cases,
                predictor,
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

#[test]
fn it_learns_and_the_control_does_not() {
    let t = trained();
    let (tmp, samples, test_rows, predictor) = (&t.tmp, &t.samples, &t.test_rows, &t.predictor);
    let eval = infer::evaluate(predictor, test_rows, &tmp.path().join("test")).expect("evaluates");
    eprintln!("held-out: {}", serde_json::to_string(&eval).expect("json"));
    let auc = eval.auc.expect("both classes");
    assert!(auc >= 0.90, "held-out AUC {auc:.3} < 0.90");

    // Negative control: labels shuffled relative to the cases.
    let mut shuffled = samples.clone();
    let mut labels: Vec<f32> = shuffled.iter().map(|s| s.label).collect();
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    labels.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(9));
    for (s, l) in shuffled.iter_mut().zip(labels) {
        s.label = l;
    }
    let control = train_on(&shuffled, &tmp.path().join("control"));
    let eval = infer::evaluate(&control, test_rows, &tmp.path().join("test")).expect("evaluates");
    eprintln!("control: {}", serde_json::to_string(&eval).expect("json"));
    let auc = eval.auc.expect("both classes");
    assert!(
        auc <= 0.6,
        "a model trained on shuffled labels reached AUC {auc:.3}"
    );
}

/// The heat map's peak lies inside the lesion mask (lesion, cortical
/// breach, periosteal reaction, soft-tissue mass) in at least 80% of the
/// held-out malignant views. Here 83 of 94 (0.883); three other seed sets
/// of the same sizes gave 0.778, 0.888 and 0.827 (see docs/decisions.md).
#[test]
fn heat_maps_point_at_the_lesion() {
    let t = trained();
    let (mut inside, mut total) = (0, 0);
    for case in t.test_cases.iter().filter(|c| c.drawn_malignant) {
        let views = case.greys();
        let p = t
            .predictor
            .predict(&views, &case.clinical, true)
            .expect("predicts");
        for (heat, view) in p.heatmaps.iter().zip(&case.views) {
            total += 1;
            let (x, y) = heat.peak;
            inside += usize::from(view.mask[y * case.width + x]);
        }
    }
    let share = inside as f64 / total as f64;
    eprintln!("heat-map peak inside the lesion: {inside}/{total} = {share:.3}");
    assert!(
        share >= 0.80,
        "only {share:.3} of heat-map peaks lie in the lesion"
    );
}

/// The model uses the lesion: for malignant held-out phantoms, the mean
/// logit with the lesion is higher than for the same cases drawn without
/// it, and than with only the lesion mask's pixels taken from the
/// lesion-free drawing. (A model that had learnt "no benign-looking lesion
/// means malignant" failed this.) Not run by default: it trains a model.
#[test]
fn what_the_model_uses() {
    let t = trained();
    let (test_cases, predictor) = (&t.test_cases, &t.predictor);
    let cfg = PhantomConfig {
        width: 96,
        height: 128,
        seed: 202,
        lesion: false,
        ..PhantomConfig::default()
    };
    let clean = phantom::generate(120, &cfg);
    let (mut with, mut without, mut masked_out) = (0.0, 0.0, 0.0);
    let mut n = 0.0;
    for (case, plain) in test_cases
        .iter()
        .zip(&clean)
        .filter(|(c, _)| c.drawn_malignant)
    {
        let views = case.greys();
        let plain_views = plain.greys();
        let swapped: Vec<_> = views
            .iter()
            .zip(&plain_views)
            .zip(&case.views)
            .map(|((v, p), pv)| {
                let mut g = v.clone();
                for (i, &m) in pv.mask.iter().enumerate() {
                    if m {
                        g.values[i] = p.values[i];
                    }
                }
                g
            })
            .collect();
        with += predictor
            .predict(&views, &case.clinical, false)
            .expect("p")
            .logit;
        without += predictor
            .predict(&plain_views, &case.clinical, false)
            .expect("p")
            .logit;
        masked_out += predictor
            .predict(&swapped, &case.clinical, false)
            .expect("p")
            .logit;
        n += 1.0;
    }
    eprintln!("mean logit over {n} malignant: with lesion {:.3}, drawn without {:.3}, mask region replaced {:.3}", with / n, without / n, masked_out / n);
    assert!(
        with > without,
        "removing the lesion does not lower the malignancy logit"
    );
    assert!(
        with > masked_out,
        "replacing the lesion region does not lower the malignancy logit"
    );
}

/// The training domain (`osteo_model::domain`): the card records the
/// training views' size, pixel spacing, intensities and embedding; held-out
/// phantoms of the same generator fall inside it, and what the model never
/// saw falls outside: a chest radiograph of the same size and spacing, the
/// same kind of bone phantom taken as a real CR is (1,760 × 1,760 pixels at
/// 0.14 mm), and an image of noise.
#[test]
fn what_the_model_never_saw_is_outside_its_training_domain() {
    let t = trained();
    let predictor = &t.predictor;
    let domain = predictor
        .dir
        .card
        .training_domain
        .as_ref()
        .expect("the card records the training domain");
    assert_eq!((domain.width, domain.height), ([96, 96], [128, 128]));
    assert_eq!(domain.spacing_mm, Some([0.2, 0.2]));
    assert_eq!(domain.histogram.len(), osteo_model::domain::HISTOGRAM_BINS);
    assert_eq!(domain.embedding_mean.len(), 32);
    assert_eq!(domain.views, 2 * predictor.dir.card.n_train);
    let check = |views: &[osteo_model::pixels::Grey], mm: f64| {
        predictor
            .domain_check(views, &vec![Some(mm); views.len()])
            .expect("checks")
            .expect("the card has a domain")
    };

    // Held-out phantoms: at most one in forty flagged.
    let flagged: Vec<Vec<String>> = t.test_cases[..40]
        .iter()
        .map(|c| check(&c.greys(), 0.2))
        .filter(|c| c.outside)
        .map(|c| c.reasons)
        .collect();
    eprintln!(
        "held-out phantoms flagged: {}/40 {flagged:?}",
        flagged.len()
    );
    assert!(flagged.len() <= 1, "{flagged:?}");

    // A chest radiograph, same size and spacing: judged by its content.
    let chest = phantom::chest_radiograph(&PhantomConfig {
        width: 96,
        height: 128,
        seed: 5,
        ..PhantomConfig::default()
    });
    let c = check(&chest.greys(), 0.2);
    eprintln!("chest radiograph: {:?}", c.reasons);
    assert!(c.outside, "a chest radiograph is inside the domain");
    assert!(
        c.reasons
            .iter()
            .all(|r| r.contains("intensities") || r.contains("features")),
        "{:?}",
        c.reasons
    );

    // A bone phantom as a real CR would be: judged by its size and spacing.
    let cr = &phantom::generate(
        1,
        &PhantomConfig {
            width: 1760,
            height: 1760,
            seed: 6,
            ..PhantomConfig::default()
        },
    )[0];
    let c = check(&cr.greys(), 0.14);
    eprintln!("1,760² CR: {:?}", c.reasons);
    assert!(c.outside);
    assert!(c.reasons.iter().any(|r| r.contains("1760 × 1760 pixels")));
    assert!(c
        .reasons
        .iter()
        .any(|r| r.contains("pixel spacing 0.140 mm")));

    // Noise of the right size.
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let noise = osteo_model::pixels::Grey {
        width: 96,
        height: 128,
        values: (0..96 * 128).map(|_| rng.gen_range(0.0..1.0)).collect(),
    };
    let c = check(&[noise.clone(), noise], 0.2);
    eprintln!("noise: {:?}", c.reasons);
    assert!(c.outside);
    assert!(
        c.reasons.iter().any(|r| r.contains("intensities")),
        "noise is judged by its intensities too: {:?}",
        c.reasons
    );
}
