//! Make the binary find libtorch at run time without LD_LIBRARY_PATH, and record libtorch's version.
//!
//! tch's own build script sets an rpath and `--no-as-needed -ltorch` only for tch's targets; without the
//! same here the binary cannot start, and on a GPU machine libtorch_cuda.so is never loaded (CUDA would be
//! reported absent). `torch-sys` is a direct dependency so that `DEP_TCH_LIBTORCH_LIB` reaches us.
fn main() {
    for var in ["DEP_TCH_LIBTORCH_LIB", "LIBTORCH", "LIBTORCH_USE_PYTORCH", "VIRTUAL_ENV"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let mut version = String::from("unknown");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
        // A PyTorch wheel has torch/version.py beside torch/lib: `__version__ = '2.11.0+cu130'`.
        let py = std::path::Path::new(&lib).join("../version.py");
        if let Ok(text) = std::fs::read_to_string(&py) {
            if let Some(line) = text.lines().find(|l| l.starts_with("__version__")) {
                version = line.split('\'').nth(1).unwrap_or("unknown").to_string();
            }
        }
    }
    println!("cargo:rustc-env=BBEVAL_LIBTORCH_VERSION={version}");
    println!("cargo:rustc-env=BBEVAL_TCH_VERSION={}", locked_version("tch"));
    println!("cargo:rerun-if-changed=Cargo.lock");
}

/// The version of `package` that Cargo.lock pins (recorded in every results JSON).
fn locked_version(package: &str) -> String {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let needle = format!("name = \"{package}\"\nversion = \"");
    lock.find(&needle)
        .and_then(|at| lock[at + needle.len()..].split('"').next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}
