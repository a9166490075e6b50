//! bbeval measures how good an image encoder's representation is, the way the BigBiGAN paper does.
//!
//! The big picture: data flows one way, **dataset → preprocess → encoder → features (Parquet cache) →
//! probe → report**. Each arrow is a module boundary:
//!
//! * [`data`] lists samples (ImageNet folders, class folders, IDX files, foolbox samples), makes the seeded
//!   train-val split and decodes + resizes images.
//! * [`encoder`] turns a batch of preprocessed pixels into named features (`avepool`, `bn_crelu`, …) through
//!   one [`encoder::Encoder`] trait: TorchScript models with a TOML manifest, or raw pixels.
//! * [`features`] drives the encoder over a dataset split (prefetching decode on rayon threads) and caches
//!   each feature as a content-addressed Parquet file.
//! * [`probe`] trains multinomial logistic-regression probes (linfa L-BFGS, or many libtorch heads at once),
//!   selects hyper-parameters on the train-val split and scores the official val split once.
//! * [`report`] holds the results JSON (with provenance) and renders Table-2 style Markdown/CSV from it.
//! * [`run`] ties them together for a run file in `eval/`.
//! * [`bigbigan`] is the paper's model at mini scale (G, E, joint D in tch), trained and exported as
//!   TorchScript so the rest of the harness evaluates it like any other encoder and generator.
//! * [`compare`] lines results up across runs (deltas with paired bootstrap intervals, curves over
//!   training steps, grid heat maps) and gates CI on them (`bbeval check`).
//!
//! `report` knows probe results, never tch; `probe` knows feature matrices, never images; `encoder` knows
//! tensors, never files. Only `features` drives a device.

pub mod bigbigan;
pub mod compare;
pub mod config;
pub mod data;
pub mod encoder;
pub mod error;
pub mod features;
pub mod genmetrics;
mod moments;
pub mod probe;
pub mod report;
pub mod run;
pub mod runtime;
pub mod suggest;

pub use error::{Error, Result};
