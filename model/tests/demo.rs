//! The embedded demo model on the views it was trained for: held-out
//! radiograph-like phantoms at the demonstration study's size (another seed
//! than its training set). It separates the classes, its heat maps point at
//! the lesion, and its training domain keeps these cases inside and a chest
//! radiograph of the same size outside.

use osteo_model::demo;
use osteo_model::infer::{self, Predictor};
use osteo_model::phantom::{self, PhantomConfig};

#[test]
fn the_demo_model_reads_radiograph_like_phantoms_and_knows_its_domain() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = demo::install(&tmp.path().join("models")).expect("the demo model installs");
    let predictor = Predictor::open(&dir, &burn::tensor::Device::flex()).expect("opens");
    let config = PhantomConfig {
        width: demo::PHANTOM_WIDTH,
        height: demo::PHANTOM_HEIGHT,
        seed: 7,
        realistic: true,
        ..PhantomConfig::default()
    };
    let images = tmp.path().join("phantoms");
    let cases = phantom::write_set(40, &config, &images).expect("phantoms written");
    let rows = osteo_model::manifest::read(&images.join("manifest.csv")).expect("manifest");
    let eval = infer::evaluate(&predictor, &rows, &images).expect("evaluates");
    eprintln!(
        "demo model on 40 held-out phantoms: {}",
        serde_json::to_string(&eval).expect("json")
    );
    let auc = eval.auc.expect("both classes");
    assert!(auc >= 0.85, "AUC {auc:.3} < 0.85");
    let in_lesion = eval.heatmap_peak_in_lesion.expect("malignant views");
    assert!(
        in_lesion >= 0.6,
        "heat-map peak in the lesion in {in_lesion:.3} of views"
    );

    let flagged = cases
        .iter()
        .filter(|c| {
            predictor
                .domain_check(&c.greys(), &[Some(0.2), Some(0.2)])
                .expect("checks")
                .expect("the demo card has a domain")
                .outside
        })
        .count();
    assert!(flagged <= 1, "{flagged} of 40 held-out phantoms flagged");
    let chest = phantom::chest_radiograph(&config);
    let c = predictor
        .domain_check(&chest.greys(), &[Some(0.2), Some(0.2)])
        .expect("checks")
        .expect("a domain");
    eprintln!("chest radiograph: {:?}", c.reasons);
    assert!(
        c.outside,
        "a chest radiograph is inside the demo model's domain"
    );
}
