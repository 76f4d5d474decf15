#!/bin/sh
# Runs the system cmake, installing it first when it is missing.
#
# Cargo calls this through the CMAKE variable set in .cargo/config.toml. On Debian and Ubuntu it
# installs the `cmake` package with apt-get (as root, or through sudo when that works without a
# password); elsewhere it stops with a message naming the package to install.
set -eu

find_cmake() {
  for candidate in /usr/bin/cmake /usr/local/bin/cmake $(command -v cmake 2>/dev/null || true); do
    if [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! cmake_bin=$(find_cmake); then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: cmake is required to build MockForge's native dependencies; install cmake and retry" >&2
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    as_root=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
  else
    echo "error: cmake is missing and installing it needs root: run 'sudo apt-get install cmake' and retry" >&2
    exit 1
  fi
  echo "cmake is missing: installing Debian's cmake package" >&2
  # Several build scripts may run at once; the lock keeps them from racing on apt.
  (
    flock 9
    find_cmake >/dev/null || {
      $as_root apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq cmake >&2
    }
  ) 9>"${TMPDIR:-/tmp}/mockforge-cmake-install.lock"
  cmake_bin=$(find_cmake) || { echo "error: installing cmake failed" >&2; exit 1; }
fi

exec "$cmake_bin" "$@"
