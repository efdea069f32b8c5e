#!/usr/bin/env bash
# Installs the C toolchains the C99 target is tested with, from the Debian packages,
# when they are missing: gcc and make (host builds, sanitizers), clang (warnings check)
# and arm-none-eabi-gcc with newlib (Cortex-M4 cross-compile, math.h). Needs root and apt-get; otherwise it says what to
# install and exits 1. Used by the tests' `toolchains` fixture (tests/conftest.py).
set -euo pipefail

# One run at a time (two test workers, the test run's background start): a second run waits for the
# first to finish, then finds nothing missing.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/symglep-install-toolchains.lock"
    flock 9
fi

packages=()
command -v gcc >/dev/null 2>&1 || packages+=(gcc libc6-dev)
command -v make >/dev/null 2>&1 || packages+=(make)
command -v clang >/dev/null 2>&1 || packages+=(clang)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || packages+=(gcc-arm-none-eabi)
# newlib's math.h for the bare-metal target
if ! echo '#include <math.h>' | arm-none-eabi-gcc -x c -fsyntax-only - >/dev/null 2>&1; then
    packages+=(libnewlib-arm-none-eabi)
fi
if [ ${#packages[@]} -eq 0 ]; then
    echo "install-toolchains: gcc, make, clang and arm-none-eabi-gcc (with newlib) are present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-toolchains: missing ${packages[*]}; install them with" \
         "'sudo apt-get install -y --no-install-recommends ${packages[*]}' (Debian/Ubuntu)" >&2
    exit 1
fi
echo "install-toolchains: apt-get install ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${packages[@]}"; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${packages[@]}"
fi
