//! How the locked report writes its numbers: three decimals, intervals,
//! p-values, an AUC with its interval, a rate with its two intervals, and a
//! series' name in the report's language.

use osteo_app::i18n::tl;
use osteo_trial::analysis::proportion::Interval;
use osteo_trial::analysis::roc::AucEstimate;
use osteo_trial::analysis::threshold::Rate;
use osteo_trial::domain::Locale;

pub(super) fn f3(x: f64) -> String {
    format!("{x:.3}")
}

pub(super) fn interval(ci: (f64, f64)) -> String {
    format!("{}–{}", f3(ci.0), f3(ci.1))
}

pub(super) fn p_value(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.0001 => "<0.0001".to_owned(),
        Some(p) => format!("{p:.4}"),
        None => "—".to_owned(),
    }
}

pub(super) fn auc_with_ci(a: &AucEstimate) -> String {
    match a.ci_delong {
        Some(ci) => format!("{} ({})", f3(a.auc), interval(ci)),
        None => format!("{} (—)", f3(a.auc)),
    }
}

pub(super) fn rate_cells(r: &Rate) -> [String; 3] {
    let ci = |i: Option<Interval>| i.map_or("—".to_owned(), |i| interval((i.lower, i.upper)));
    [
        r.value
            .map_or("—".to_owned(), |v| format!("{} ({}/{})", f3(v), r.x, r.n)),
        ci(r.wilson),
        ci(r.clopper_pearson),
    ]
}

/// A series or reader name from the analysis (`reader 2 Bone-RADS`), in the
/// report's language.
pub(super) fn label(locale: Locale, name: &str) -> String {
    if name == "AI" {
        return tl(locale, "pdf.ai");
    }
    name.replace("mean of readers", &tl(locale, "pdf.mean_of_readers"))
        .replace("reader", &tl(locale, "pdf.reader"))
        .replace("likelihood", &tl(locale, "pdf.likelihood"))
}
