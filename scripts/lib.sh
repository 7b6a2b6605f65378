# shellcheck shell=bash
# Shared helpers for scripts/up and scripts/test. Source it; do not run it.
#
# Environment understood here:
#   PARLEY_BUILD_DIR   build directory (default: build, or build-asan/build-tsan
#                      when PARLEY_SANITIZE is set)
#   PARLEY_SANITIZE    address | thread: sanitizer build
#   PARLEY_BUILD_TYPE  CMake build type (default Release; RelWithDebInfo for
#                      sanitizer builds)
#   PARLEY_SKIP_DEPS=1 do not check/install Debian packages
#   PARLEY_SKIP_BUILD=1 use the binaries already in $PARLEY_BUILD_DIR/bin

PARLEY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PARLEY_ROOT

# Debian 12 packages needed to build, test and run Parley locally.
PARLEY_APT_PACKAGES=(
  cmake g++ pkg-config ninja-build ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libpqxx-dev libpq-dev libhiredis-dev libsodium-dev libicu-dev libspdlog-dev
  libboost1.81-dev libgtest-dev libgmock-dev libbenchmark-dev
  postgresql redis-server openssl docker-compose
)

parley::ts() { date '+%Y-%m-%d %H:%M:%S'; }
parley::log() { printf '[%s] %s\n' "$(parley::ts)" "$*" >&2; }
parley::warn() { printf '[%s] WARNING: %s\n' "$(parley::ts)" "$*" >&2; }
parley::die() {
  printf '[%s] ERROR: %s\n' "$(parley::ts)" "$*" >&2
  exit 1
}

# Runs a command as root: directly, through sudo, or not at all (returns 1).
parley::as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    return 1
  fi
}

# Installs the missing Debian packages; does nothing when all are present.
parley::ensure_deps() {
  if [[ "${PARLEY_SKIP_DEPS:-0}" == 1 ]]; then
    return 0
  fi
  local missing=() pkg status
  for pkg in "${PARLEY_APT_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == ii* ]] || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    return 0
  fi
  parley::log "installing missing Debian packages: ${missing[*]}"
  if [[ $EUID -ne 0 ]] && ! command -v sudo >/dev/null 2>&1; then
    parley::die "not root and no sudo; install these first:
    apt-get update && apt-get install -y ${missing[*]}"
  fi
  parley::as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
    parley::die "apt-get update failed"
  parley::as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}" ||
    parley::die "apt-get install failed; needed: ${missing[*]}"
}

# Chooses the build directory and CMake settings from the environment and
# exports PARLEY_BUILD_DIR (absolute) and PARLEY_BUILD_BIN.
parley::build_settings() {
  local sanitize="${PARLEY_SANITIZE:-}"
  local default_dir=build default_type=Release
  case "$sanitize" in
    '') ;;
    address) default_dir=build-asan default_type=RelWithDebInfo ;;
    thread) default_dir=build-tsan default_type=RelWithDebInfo ;;
    *) parley::die "PARLEY_SANITIZE must be 'address' or 'thread', not '$sanitize'" ;;
  esac
  PARLEY_BUILD_DIR="${PARLEY_BUILD_DIR:-$default_dir}"
  [[ "$PARLEY_BUILD_DIR" == /* ]] || PARLEY_BUILD_DIR="$PARLEY_ROOT/$PARLEY_BUILD_DIR"
  PARLEY_BUILD_TYPE="${PARLEY_BUILD_TYPE:-$default_type}"
  PARLEY_BUILD_BIN="$PARLEY_BUILD_DIR/bin"
  export PARLEY_BUILD_DIR PARLEY_BUILD_TYPE PARLEY_BUILD_BIN
}

# Reads one value from an existing CMakeCache.txt ("" when absent).
parley::cmake_cache_get() {
  local cache="$1/CMakeCache.txt" key="$2"
  [[ -f "$cache" ]] || return 0
  sed -n "s/^${key}:[A-Z]*=//p" "$cache" | head -n1
}

# Configures (only when needed) and builds the given targets (default: all).
parley::build() {
  parley::build_settings
  if [[ "${PARLEY_SKIP_BUILD:-0}" == 1 ]]; then
    parley::log "PARLEY_SKIP_BUILD=1: using binaries in $PARLEY_BUILD_BIN"
    return 0
  fi
  local dir="$PARLEY_BUILD_DIR" sanitize="${PARLEY_SANITIZE:-}"
  local args=(-S "$PARLEY_ROOT" -B "$dir"
    "-DCMAKE_BUILD_TYPE=$PARLEY_BUILD_TYPE" "-DPARLEY_SANITIZE=$sanitize")
  local configure=1
  if [[ -f "$dir/CMakeCache.txt" ]]; then
    # An existing tree keeps its generator; reconfigure only on changes
    # (cmake --build re-runs CMake by itself when CMakeLists.txt change).
    if [[ -f "$dir/build.ninja" || -f "$dir/Makefile" ]] &&
       [[ "$(parley::cmake_cache_get "$dir" CMAKE_BUILD_TYPE)" == "$PARLEY_BUILD_TYPE" ]] &&
       [[ "$(parley::cmake_cache_get "$dir" PARLEY_SANITIZE | sed 's/^OFF$//')" == "$sanitize" ]]; then
      configure=0
    fi
  else
    args+=(-G Ninja)
  fi
  if command -v ccache >/dev/null 2>&1; then
    # Keep the compiler cache across checkouts and CI runs of the same user.
    export CCACHE_DIR="${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ccache}"
    mkdir -p "$CCACHE_DIR" 2>/dev/null || true
  fi
  if [[ $configure == 1 ]]; then
    parley::log "configuring $dir ($PARLEY_BUILD_TYPE${sanitize:+, sanitize=$sanitize})"
    cmake "${args[@]}" || parley::die "cmake configure failed"
  fi
  local targets=()
  if [[ $# -gt 0 ]]; then
    targets=(--target "$@")
  fi
  parley::log "building in $dir${*:+ ($*)}"
  cmake --build "$dir" "${targets[@]}" || parley::die "build failed"
}

# Absolute path of a Parley binary in the current build.
parley::bin() {
  local path="$PARLEY_BUILD_BIN/$1"
  [[ -x "$path" ]] || parley::die "missing binary $path (build first)"
  printf '%s\n' "$path"
}

# Returns 0 when something accepts TCP connections on 127.0.0.1:$1.
parley::port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Microseconds since the epoch (bash 5 $EPOCHREALTIME, locale-proof).
parley::now_us() {
  local t="${EPOCHREALTIME//[!0-9]/}"
  printf '%s\n' "$((10#$t))"
}

# Sleeps in a way that lets trapped signals interrupt at once.
parley::sleep() {
  sleep "$1" &
  PARLEY_SLEEP_PID=$!
  wait "$PARLEY_SLEEP_PID" || true
  PARLEY_SLEEP_PID=
}

# Directory with PostgreSQL's server programs (initdb, pg_ctl, postgres).
parley::pg_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir="$(pg_config --bindir 2>/dev/null || true)"
    if [[ -x "$dir/initdb" ]]; then
      printf '%s\n' "$dir"
      return 0
    fi
  fi
  for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [[ -x "$dir/initdb" ]]; then
      printf '%s\n' "$dir"
      return 0
    fi
  done
  parley::die "PostgreSQL server programs not found (apt-get install postgresql)"
}
