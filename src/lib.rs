//! wactl: one typed definition per environment renders, builds, applies and verifies
//! the World Address service.

pub mod cli;
pub mod config;
pub mod render;
pub mod ui;
