//! World Address: validates, normalises and formats postal addresses for every country.

pub mod address;
pub mod data;
