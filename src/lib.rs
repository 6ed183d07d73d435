//! wactl: one typed definition per environment renders, builds, applies and verifies
//! the World Address service.

pub mod build;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod deploy;
pub mod github;
pub mod local;
pub mod render;
pub mod smoke;
pub mod ui;
