#!/usr/bin/env bash
# Create the peer-server venvs the benchmark harness runs against.
#
#   benchmarks/.venv-314   python3.14  (GIL build): uvicorn + httptools + uvloop, its best setup,
#                          websockets + wsproto (uvicorn's two --ws back ends; the websocket
#                          suite's load generator also runs here, on uvloop), hypercorn with
#                          aioquic (its HTTP/3, --quic-bind: h3_bench.py)
#   benchmarks/.venv-314t  python3.14t (free-threaded): uvicorn + h11, granian, hypercorn (its
#                          WebSocket support is wsproto), uvloop (the bare WebSocket echo ceiling)
#   both also get bengal-chirp (and its runtime deps) for the chirp suite, WITHOUT bengal-pounce
#
# pounce itself is NOT installed here: it runs from the repo's dev venvs (/work/main/.venv and
# /work/main/.venv-gil) so the numbers are always for the working tree. Idempotent: re-running
# only upgrades to the pinned versions. The .venv-* folders are gitignored.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py314="${PY314:-python3.14}"
py314t="${PY314T:-python3.14t}"

# Pinned so that numbers from different days compare like with like. Bump deliberately.
UVICORN="uvicorn==0.54.0"
HTTPTOOLS="httptools==0.9.0"
UVLOOP="uvloop==0.23.0"
GRANIAN="granian==2.8.9"
HYPERCORN="hypercorn==0.18.0"
# hypercorn's HTTP/3 (its `h3` extra), run on the GIL build by h3_bench.py.
AIOQUIC="aioquic==1.7.2"
H11="h11==0.16.0"
# The websocket suite: uvicorn --ws websockets / --ws wsproto; hypercorn depends on wsproto.
WEBSOCKETS="websockets==17.4"
WSPROTO="wsproto==1.3.2"
# Real framework routes: the frameworks suite (apps/starlette_bench.py, apps/fastapi_bench.py)
# and compare_revisions.py. FastAPI brings pydantic (pydantic-core ships cp314t wheels that
# keep the GIL off).
STARLETTE="starlette==1.10.0"
FASTAPI="fastapi==0.163.2"
# Only used by the harness to write the .br sidecar of the static fixtures (never brotli: it
# re-enables the GIL on 3.14t).
BROTLICFFI="brotlicffi==1.2.1.0"
# The chirp suite's peers serve apps/chirp_bench.py as plain ASGI. bengal-chirp declares
# bengal-pounce as a dependency, but imports pounce only to run its own server and in
# handle_sync, which granian and uvicorn never call. So chirp goes in with --no-deps and its
# runtime deps are listed here (kida, milo-cli, anyio; itsdangerous because chirp 0.10.3
# imports it while freezing any app): the peer venvs stay free of PyPI's bengal-pounce, and
# `pip check` there reports that one missing requirement on purpose.
CHIRP="bengal-chirp==0.10.3"
CHIRP_DEPS=("kida-templates==0.12.0" "milo-cli==0.4.3" "anyio==4.16.0" "itsdangerous==2.2.0")

if ! command -v "$py314" >/dev/null || ! command -v "$py314t" >/dev/null; then
    if [ -x /work/shared/toolchain/install-python ]; then
        /work/shared/toolchain/install-python
    fi
fi

make_venv() {
    local py="$1" dir="$2"
    shift 2
    if [ ! -x "$dir/bin/python" ]; then
        "$py" -m venv "$dir"
    fi
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
    echo "ready: $dir ($("$dir/bin/python" -c 'import sys; print(sys.version.split()[0], "GIL" if sys._is_gil_enabled() else "free-threaded")'))"
}

make_venv "$py314" "$here/.venv-314" "$UVICORN" "$HTTPTOOLS" "$UVLOOP" "$H11" "$HYPERCORN" "$AIOQUIC" "$WEBSOCKETS" \
    "$WSPROTO" "$STARLETTE" "$FASTAPI" "${CHIRP_DEPS[@]}"
make_venv "$py314t" "$here/.venv-314t" "$UVICORN" "$H11" "$GRANIAN" "$HYPERCORN" "$BROTLICFFI" \
    "$UVLOOP" "$WSPROTO" "$STARLETTE" "$FASTAPI" "${CHIRP_DEPS[@]}"
for venv in "$here/.venv-314" "$here/.venv-314t"; do
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$CHIRP"
    # From / so that a repo checkout in the working directory cannot answer the import.
    if (cd / && "$venv/bin/python" -c "import pounce" 2>/dev/null); then
        echo "warning: $venv has a pounce package; the peers must not depend on it" >&2
    fi
done

# Debian tools the harness drives (already present on the project machines; install if not).
missing=()
for tool in wrk nginx taskset; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing Debian packages for: ${missing[*]}"
    pkgs=()
    for tool in "${missing[@]}"; do
        case "$tool" in
            taskset) pkgs+=(util-linux) ;;
            nginx) pkgs+=(nginx-light) ;;
            *) pkgs+=("$tool") ;;
        esac
    done
    apt-get update -qq && apt-get install -y -qq "${pkgs[@]}"
fi

# Optional nginx modules, loaded by the harness's own config only when their .so exists (a
# missing one turns the matching nginx cell into "n/a" with the reason):
#   brotli_static  serves the precompressed .br sidecar in the static suite
#   echo           lets nginx answer the POST /echo workload
want_pkgs=()
[ -e /usr/lib/nginx/modules/ngx_http_brotli_static_module.so ] || want_pkgs+=(libnginx-mod-http-brotli-static)
[ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ] || want_pkgs+=(libnginx-mod-http-echo)
if [ "${#want_pkgs[@]}" -gt 0 ]; then
    { apt-get install -y -qq "${want_pkgs[@]}" \
        || { apt-get update -qq && apt-get install -y -qq "${want_pkgs[@]}"; }; } \
        || echo "note: could not install ${want_pkgs[*]}; the matching nginx cells will say so"
fi
