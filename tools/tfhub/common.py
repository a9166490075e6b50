"""What both stages of the TF Hub import share: the refusal protocol, the output names and the comparison.

Imported by stage_tf.py (TF venv), stage_torch.py (main venv) and import_module.py (any python3, no numpy):
numpy is imported only by the functions that compare arrays.
"""
import sys
from typing import TYPE_CHECKING, Callable, Dict

if TYPE_CHECKING:
    import numpy as np

# Exit code of a refusal: the module (or what it converts to) cannot be imported; the one stderr line
# after REFUSAL_PREFIX names the file and the fix. import_module.py passes that line on as is.
REFUSED = 2
REFUSAL_PREFIX = "import_module: refused: "

# The module's encode outputs -> bbeval's encoder contract (`default` is z_sample again and is dropped).
ENCODER_OUTPUTS = {"avepool_feat": "avepool", "bn_crelu_feat": "bn_crelu", "z_mean": "z_mean",
                   "z_stdev": "z_stdev", "z_sample": "z_sample"}
# z_sample is random: it is not converted but recomputed from z_mean and z_stdev, and checked by its law.
RANDOM_OUTPUTS = ("z_sample",)

TOLERANCE = {"rel_max_abs": 1e-4, "min_row_cosine": 0.99999}


class Refusal(Exception):
    """The import cannot go on; str() is one line naming the file and the fix."""


def run_refusing(main: Callable[[], None]) -> None:
    """Runs a stage's main; a Refusal becomes one stderr line and exit code REFUSED."""
    try:
        main()
    except Refusal as e:
        print(REFUSAL_PREFIX + " ".join(str(e).split()), file=sys.stderr)
        sys.exit(REFUSED)


def compare(ref: "np.ndarray", got: "np.ndarray") -> Dict[str, float]:
    """Max abs error relative to the reference's max abs value, and the worst per-row cosine."""
    import numpy as np
    ref64 = ref.reshape(len(ref), -1).astype(np.float64)
    got64 = got.reshape(len(got), -1).astype(np.float64)
    if ref.shape != got.shape:
        raise ValueError(f"shape {got.shape} where the reference has {ref.shape}")
    err = float(np.max(np.abs(ref64 - got64))) if ref64.size else 0.0
    scale = float(np.max(np.abs(ref64))) if ref64.size else 0.0
    norms = np.linalg.norm(ref64, axis=1) * np.linalg.norm(got64, axis=1)
    dots = np.sum(ref64 * got64, axis=1)
    # Two all-zero rows agree exactly; one zero row against a non-zero one does not.
    both_zero = (np.linalg.norm(ref64, axis=1) == 0) & (np.linalg.norm(got64, axis=1) == 0)
    cos = np.where(both_zero, 1.0, dots / np.maximum(norms, 1e-300))
    rel = err / scale if scale > 0 else (0.0 if err == 0 else float("inf"))
    return {"max_abs_err": err, "max_abs_ref": scale, "rel": rel,
            "min_row_cosine": float(np.min(cos)) if len(cos) else 1.0}


def passes(stats: Dict[str, float]) -> bool:
    return stats["rel"] <= TOLERANCE["rel_max_abs"] and stats["min_row_cosine"] >= TOLERANCE["min_row_cosine"]


def check_all(refs: Dict[str, "np.ndarray"], got: Dict[str, "np.ndarray"], what: str, file: str) -> Dict[str, Dict]:
    """Compares every output; refuses on the first that fails, naming it and its error."""
    out = {}
    for name, ref in refs.items():
        try:
            stats = compare(ref, got[name])
        except ValueError as e:
            raise Refusal(f"{file}: {what}: output `{name}` has {e}. Fix: none on the module side; rerun "
                          "with --keep-work and report the work folder")
        out[name] = stats
        if not passes(stats):
            raise Refusal(f"{file}: {what}: output `{name}` differs (rel {stats['rel']:.3g} > "
                          f"{TOLERANCE['rel_max_abs']:g} or row cosine {stats['min_row_cosine']:.7f} < "
                          f"{TOLERANCE['min_row_cosine']}). Fix: none on the module side; rerun with --keep-work "
                          "and report the work folder (ONNX files, stage logs)")
    return out
