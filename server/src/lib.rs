//! The Osteo EDC process: configuration, start-up, the command line, the
//! HTTP surface (pages, form posts, REST API) — wiring `app`, `trial` and
//! `model` together. Nothing imports this crate but its binary and the
//! end-to-end tests.

pub mod ai;
pub mod api;
pub mod case_report;
pub mod cli;
pub mod config;
pub mod demo_cases;
mod errors;
pub mod exports;
mod forms;
mod guard;
pub mod images_cli;
pub mod imaging;
mod model_cli;
pub mod odm;
pub mod report;
mod routes;
mod session_store;
pub mod startup;
mod stats_cli;

pub use config::Settings;
pub use startup::Application;
