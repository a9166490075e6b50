//! The execution context: where and how numbers are computed — device, forward precision, CPU threads.
//!
//! Decided once, from the command-line flags or the run file ([`ExecutionContext::decide`]), then passed
//! to every encoder, generator, FID/IS run, probe and training loop. Nothing else in the crate asks libtorch
//! which device to use, so `--device cpu` holds end to end and the provenance records what actually ran.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use crate::error::{Error, Result};

/// Where to run, as a user writes it: `auto` (the first CUDA device when there is one, else the CPU),
/// `cpu`, `cuda` (= `cuda:0`) or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<DeviceChoice> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| Error::Device(format!("`{other}` is not a device; use auto, cpu, cuda or cuda:N"))),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => write!(f, "auto"),
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl From<DeviceChoice> for String {
    fn from(d: DeviceChoice) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for DeviceChoice {
    type Error = Error;
    fn try_from(s: String) -> Result<DeviceChoice> {
        s.parse()
    }
}

/// Numeric precision of encoder forward passes. Half precisions are for CUDA only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
    Bf16,
}

impl Precision {
    pub fn kind(self) -> Kind {
        match self {
            Precision::F32 => Kind::Float,
            Precision::F16 => Kind::Half,
            Precision::Bf16 => Kind::BFloat16,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }
}

/// Where and how this process computes. Cheap to copy; build it once with [`ExecutionContext::decide`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExecutionContext {
    pub device: Device,
    /// Precision of encoder forward passes (features are always handed on as f32).
    pub precision: Precision,
    /// libtorch intra-op threads on the CPU.
    pub threads: usize,
}

impl ExecutionContext {
    /// Resolve the user's choice once: `auto` becomes a concrete device, a CUDA device that does not exist
    /// is an error (never a silent fall-back), half precision on the CPU is refused, and libtorch's CPU
    /// thread count is set for the whole process.
    pub fn decide(choice: DeviceChoice, precision: Precision, threads: Option<usize>) -> Result<ExecutionContext> {
        let device = match choice {
            DeviceChoice::Auto => Device::cuda_if_available(),
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Cuda(n) => {
                let count = tch::Cuda::device_count() as usize;
                if n >= count {
                    let have = if count == 0 { "no CUDA device is visible (is libtorch_cuda loaded, and a GPU present?)".to_string() } else { format!("only cuda:0..cuda:{} exist", count - 1) };
                    return Err(Error::Device(format!("--device cuda:{n}: {have}; use --device cpu or auto")));
                }
                Device::Cuda(n)
            }
        };
        if precision != Precision::F32 && !device.is_cuda() {
            return Err(Error::Device(format!("--dtype {} needs a CUDA device; use --dtype f32 on the CPU", precision.as_str())));
        }
        if let Some(0) = threads {
            return Err(Error::Device("--threads must be ≥ 1".into()));
        }
        if let Some(n) = threads {
            tch::set_num_threads(n as i32);
        }
        if device.is_cuda() {
            // cuDNN times its algorithms for each new input shape once and keeps the fastest (PyTorch's
            // `cudnn.benchmark`): training and extraction repeat a few shapes thousands of times.
            tch::Cuda::cudnn_set_benchmark(true);
        }
        Ok(ExecutionContext { device, precision, threads: tch::get_num_threads().max(1) as usize })
    }

    /// The CPU in f32 with libtorch's default thread count: what tests and CPU-only tools use.
    pub fn cpu() -> ExecutionContext {
        ExecutionContext { device: Device::Cpu, precision: Precision::F32, threads: tch::get_num_threads().max(1) as usize }
    }

    /// This context in another precision (a run file may ask for f32 in one row's tools, e.g. FID).
    pub fn with_precision(self, precision: Precision) -> ExecutionContext {
        ExecutionContext { precision, ..self }
    }

    pub fn is_cuda(&self) -> bool {
        self.device.is_cuda()
    }

    /// Free memory of this context's GPU in bytes (`cudaMemGetInfo` of the CUDA runtime libtorch loaded);
    /// `None` on the CPU or when it cannot be read.
    pub fn cuda_free_memory(&self) -> Option<usize> {
        let Device::Cuda(n) = self.device else { return None };
        type GetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> i32;
        type GetSet = unsafe extern "C" fn(*mut i32) -> i32;
        type Set = unsafe extern "C" fn(i32) -> i32;
        // SAFETY: the symbols are looked up in the already-loaded CUDA runtime (libtorch_cuda links it) and
        // called with their documented signatures; the current device is restored afterwards.
        unsafe {
            let sym = |name: &std::ffi::CStr| libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
            let (info, get, set) = (sym(c"cudaMemGetInfo"), sym(c"cudaGetDevice"), sym(c"cudaSetDevice"));
            if info.is_null() || get.is_null() || set.is_null() {
                return None;
            }
            let (info, get, set) = (std::mem::transmute::<*mut libc::c_void, GetInfo>(info), std::mem::transmute::<*mut libc::c_void, GetSet>(get), std::mem::transmute::<*mut libc::c_void, Set>(set));
            let mut previous = 0i32;
            get(&mut previous);
            set(n as i32);
            let (mut free, mut total) = (0usize, 0usize);
            let status = info(&mut free, &mut total);
            set(previous);
            (status == 0).then_some(free)
        }
    }

    /// What ran, for provenance: `cpu` or `cuda:N`.
    pub fn device_name(&self) -> String {
        match self.device {
            Device::Cuda(n) => format!("cuda:{n}"),
            _ => "cpu".into(),
        }
    }

    /// One line for reports: device, precision and threads.
    pub fn describe(&self) -> String {
        format!("{} {} ({} CPU threads)", self.device_name(), self.precision.as_str(), self.threads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_choices_parse_and_print_back() {
        for s in ["auto", "cpu", "cuda:0", "cuda:3"] {
            assert_eq!(s.parse::<DeviceChoice>().unwrap().to_string(), s);
        }
        assert_eq!("cuda".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(0));
        assert!(matches!("gpu".parse::<DeviceChoice>(), Err(Error::Device(_))));
        assert!(matches!("cuda:x".parse::<DeviceChoice>(), Err(Error::Device(_))));
    }

    #[test]
    fn cpu_is_honoured_and_half_precision_needs_cuda() {
        let ctx = ExecutionContext::decide(DeviceChoice::Cpu, Precision::F32, None).unwrap();
        assert_eq!(ctx.device, Device::Cpu);
        assert_eq!(ctx.device_name(), "cpu");
        assert!(matches!(ExecutionContext::decide(DeviceChoice::Cpu, Precision::Bf16, None), Err(Error::Device(_))));
        // A device index beyond what exists is refused, not replaced by the CPU.
        assert!(matches!(ExecutionContext::decide(DeviceChoice::Cuda(64), Precision::F32, None), Err(Error::Device(_))));
    }
}
