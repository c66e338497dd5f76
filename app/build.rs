//! Rebuilds the crate when a translation file changes: rust-i18n embeds
//! `locales/*.yml` at compile time but does not tell cargo it read them.
fn main() {
    println!("cargo:rerun-if-changed=locales");
}
