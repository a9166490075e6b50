//! The paper's own encoders: TF Hub modules converted to TorchScript ([`import`]) with verification
//! records that bbeval checks itself and requires before it uses an import ([`verify`]).

pub mod import;
pub mod verify;
