# Sourced by the GPU scripts (gpu_check.sh, gpu_recipe.sh), which run on the lent GPU machine; defines two
# functions and runs nothing.
#
# gpu_args LINES "$@": the scripts' shared command line, [--cpu-mode] TARGET; sets CPU_MODE (0/1) and TARGET,
# prints the script's header lines LINES (a sed range, e.g. 2,24p) for -h and exits, exits 2 on a bad one.
gpu_args() {
  local help_lines="$1" a
  shift
  CPU_MODE=0
  TARGET=""
  for a in "$@"; do
    case "$a" in
      --cpu-mode) CPU_MODE=1 ;;
      -h|--help) sed -n "$help_lines" "$0"; exit 0 ;;
      -*) echo "unknown option $a" >&2; exit 2 ;;
      *) TARGET="$a" ;;
    esac
  done
  [[ -n "$TARGET" ]] || { echo "usage: $0 [--cpu-mode] OUT" >&2; exit 2; }
}

# gpu_libraries: lets the bundle's bbeval start there. Needs ROOT (the bundle or the repository), BBEVAL,
# PYTHON and WORK (with WORK/logs); sets and exports LD_LIBRARY_PATH (python's torch/lib first: bbeval links
# libtorch 2.11 through tch 0.24), and sets TORCHLIB, LIBMODE, BUNDLED_USED and BB_OK (1 when
# `bbeval --version` ran).
gpu_libraries() {
  TORCHLIB="$("$PYTHON" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>"$WORK/logs/torchlib.err")"
  # Bundled libraries (fontconfig, freetype, png, expat, brotli, ...) only where the system lacks them: a bundled
  # copy built against a newer glibc than the machine's would not load, the system's always does.
  LIBSEL="$WORK/lib"
  mkdir -p "$LIBSEL"
  BUNDLED_USED=()
  LDCONFIG="$(command -v ldconfig || echo /sbin/ldconfig)"
  if [[ -d "$ROOT/lib" ]]; then
    SYSLIBS="$("$LDCONFIG" -p 2>/dev/null || true)"
    for f in "$ROOT"/lib/*.so*; do
      [[ -e "$f" ]] || continue
      so="$(basename "$f")"
      if ! grep -qE "^[[:space:]]+${so//./\\.} \(.*x86-64" <<<"$SYSLIBS"; then
        ln -sf "$f" "$LIBSEL/$so"; BUNDLED_USED+=("$so")
      fi
    done
  fi
  LIBMODE="system libraries + missing ones from the bundle"
  export LD_LIBRARY_PATH="$TORCHLIB:$LIBSEL${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if ! "$BBEVAL" --version >"$WORK/logs/version.out" 2>"$WORK/logs/version.err" && [[ -d "$ROOT/lib" ]]; then
    LIBMODE="all bundled libraries (the system's did not let bbeval start: $(tail -c 300 "$WORK/logs/version.err" | tr '\n' ' '))"
    export LD_LIBRARY_PATH="$TORCHLIB:$ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    BUNDLED_USED=(all)
    "$BBEVAL" --version >"$WORK/logs/version.out" 2>"$WORK/logs/version.err"
  fi
  BB_OK=1
  if ! grep -q bbeval "$WORK/logs/version.out"; then
    BB_OK=0
    ldd "$BBEVAL" > "$WORK/logs/ldd.out" 2>&1
  fi
}

# gpu_fonts: the bundle's font for the training plots where the machine has no fontconfig configuration (the GPU
# image: plotters then finds no font and the plot is not drawn) or BBEVAL_BUNDLED_FONTS is set. Needs ROOT and
# WORK; sets FONTS ("bundled" or "the machine's").
gpu_fonts() {
  FONTS="the machine's"
  compgen -G "$ROOT/fonts/*.ttf" >/dev/null || return 0
  if [[ -n "${BBEVAL_BUNDLED_FONTS:-}" || ( -z "${FONTCONFIG_FILE:-}" && ! -e /etc/fonts/fonts.conf ) ]]; then
    printf '<?xml version="1.0"?>\n<fontconfig><dir>%s</dir><cachedir>%s</cachedir></fontconfig>\n' \
      "$ROOT/fonts" "$WORK/fontcache" > "$WORK/fonts.conf"
    export FONTCONFIG_FILE="$WORK/fonts.conf"
    FONTS="bundled ($(cd "$ROOT/fonts" && ls -- *.ttf | tr '\n' ' '))"
  fi
}
