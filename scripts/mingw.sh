# Sourced by the scripts that build Windows binaries with mingw-w64 (test-windows.sh,
# build-windows-addon.sh): the tools, and one parallel compile.
cxx=${MINGW_CXX:-x86_64-w64-mingw32-g++-posix}
dlltool=${MINGW_DLLTOOL:-x86_64-w64-mingw32-dlltool}
objdump=${MINGW_OBJDUMP:-x86_64-w64-mingw32-objdump}

# mingw_compile <out-dir> <source.cc>...: compiles each source with the array `flags`, all at
# once, into <out-dir>/<path_with_underscores>.o; the array `objs` lists the objects. Fails when
# one compile fails.
mingw_compile() {
  local out=$1 src pid status=0
  local pids=()
  shift
  objs=()
  for src in "$@"; do
    objs+=("$out/$(echo "${src%.cc}" | tr / _).o")
    "$cxx" "${flags[@]}" -c "$src" -o "${objs[-1]}" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  return "$status"
}
