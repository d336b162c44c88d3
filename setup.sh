#!/usr/bin/env bash
# One-time setup, safe to re-run: the Debian packages for headless (EGL) rendering with pyrender,
# then the pinned Python packages of requirements.txt. Uses `python` unless PYTHON is set.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON="${PYTHON:-python}"
APT_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri)

install_apt_packages() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: apt-get not found; install these packages (or your system's equivalents) for headless" \
            "rendering: ${APT_PACKAGES[*]}"
        return 0
    fi
    local missing=() package
    for package in "${APT_PACKAGES[@]}"; do
        # Skip what is installed: re-runs stay fast and work offline.
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "setup: Debian packages already installed: ${APT_PACKAGES[*]}"
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "setup: not root and no sudo; as root, run: apt-get install -y ${missing[*]}"
            return 0
        fi
        sudo=(sudo)
    fi
    echo "setup: apt-get update"
    # Rendering is needed only for visualisation: a failed install warns instead of stopping the setup.
    if ! "${sudo[@]}" apt-get update \
        || ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; then
        echo "setup: WARNING: could not install ${missing[*]}; headless rendering will fail until they are installed"
        return 0
    fi
    echo "setup: installed ${missing[*]}"
}

echo "setup: Debian packages for headless rendering: ${APT_PACKAGES[*]}"
install_apt_packages

echo "setup: $PYTHON -m pip install -r requirements.txt"
"$PYTHON" -m pip install -r requirements.txt
echo "setup: done"
