//! The shared engine test harness (privet-fl's `harness` feature).

#![allow(unused_imports)]

pub use privet_fl::harness::*;
