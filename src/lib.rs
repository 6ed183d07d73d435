//! wactl: one typed definition per environment renders, builds, applies and verifies
//! the World Address service.
