//! bbeval measures how good an image encoder's representation is, the way the BigBiGAN paper does.
//!
//! The big picture: data flows one way, **dataset → preprocess → encoder → features (Parquet cache) →
//! probe → report**. Each arrow is a module boundary:
//!
//! * [`data`] lists samples (a registry of dataset kinds: ImageNet folders, class folders, IDX files,
//!   foolbox samples), identifies their content, makes seeded subsets and decodes + resizes images.
//! * [`encoder`] turns a batch of preprocessed pixels into named features (`avepool`, `bn_crelu`, …) through
//!   one [`encoder::Encoder`] trait: TorchScript models with a TOML manifest, or raw pixels.
//! * [`features`] drives the encoder over a dataset split in resumable, shardable parts and caches each
//!   feature as a checksummed, content-addressed Parquet file.
//! * [`probe`] trains multinomial logistic-regression probes (back-ends behind one trait: full-batch L-BFGS
//!   over many heads, streaming SGD, linfa), selects hyper-parameters on the train-val split and scores
//!   the official val split once.
//! * [`genmetrics`] computes FID and IS of image sets and generators.
//! * [`report`] holds the results JSON (with provenance), the metric descriptors and the paper's numbers,
//!   and renders Table-1/2/3 style Markdown/CSV from it.
//! * [`compare`] lines results up across runs and gates CI on any metric in its own direction.
//! * [`runfile`] reads the run files of `eval/`; [`run`] ties everything together for one.
//! * [`bigbigan`] is the paper's model at mini scale, trained and exported as TorchScript; [`tfhub`]
//!   imports the paper's own TF Hub encoders with verification records.
//!
//! Decisions are made once and passed down: [`protocol`] is the one table of defaults, [`context`] the
//! execution context (device, precision, threads), [`reporter`] the one way library code talks to people.
//! `report` knows probe results, never tch; `probe` knows feature matrices, never images; `encoder` knows
//! tensors, never files.

pub mod atomic;
pub mod bigbigan;
pub mod compare;
pub mod context;
pub mod data;
pub mod encoder;
pub mod error;
pub mod features;
pub mod genmetrics;
mod moments;
pub mod probe;
pub mod protocol;
pub mod report;
pub mod reporter;
pub mod run;
pub mod runfile;
pub mod runtime;
pub mod seeded;
pub mod suggest;
pub mod testing;
pub mod tfhub;

pub use error::{Error, Result};
