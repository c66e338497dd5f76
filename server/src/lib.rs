//! The Osteo EDC process: configuration, start-up, the command line, the
//! HTTP surface (pages, form posts, REST API) — wiring `app`, `trial` and
//! `model` together. Nothing imports this crate but its binary and the
//! end-to-end tests.

// The case page's view type is deep; its layout is computed here, where the
// pages are rendered (as in `app`).
#![recursion_limit = "256"]

/// Gives each API body and form that carries an electronic signature (`password` and
/// `second_factor`) its [`SigningSecret`](osteo_trial::accounts::SigningSecret).
macro_rules! signing_bodies {
    ($($body:ty),+) => {$(
        impl $body {
            fn secret(&self) -> osteo_trial::accounts::SigningSecret {
                osteo_trial::accounts::SigningSecret::new(&self.password, self.second_factor.as_deref())
            }
        }
    )+};
}

pub mod ai;
pub mod api;
pub mod backup;
pub mod case_report;
pub mod cli;
pub mod config;
pub mod demo_cases;
pub mod dicomweb;
mod downloads;
mod errors;
pub mod exports;
mod forms;
pub mod fuzzing;
pub mod imaging;
pub mod locked_report;
pub mod metrics;
mod middleware;
pub mod pacs;
mod pdf;
mod routes;
mod session_store;
pub mod startup;
pub mod state;
pub mod throttle;
mod urls;

pub use config::Settings;
pub use startup::Application;
