//! The smoke suite that proves a running environment answers correctly.
