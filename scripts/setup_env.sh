#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment: idempotent, and a no-op the second time unless the
# install inputs changed. Sourced by ./agra.sh; AGRA_VENV overrides the location (default .venv in the repo).
#
# - With a sourced ROS 2 distro (ROS_DISTRO set and rclpy importable), the venv sees the distro's packages
#   (--system-site-packages) and no ROS wheels are installed over them.
# - Without one, the ROS 2 Jazzy wheels from PyPI are installed into the venv (rclpy + Fast DDS rmw + messages).
# - Either way the interfaces in msg/ are generated into the venv (scripts/build_interfaces.sh; needs cmake, a C/C++
#   compiler and the Python headers), and without a distro vision_msgs too (interfaces/vision_msgs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AGRA_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

ROS_WHEELS=(ros-jazzy-rclpy ros-jazzy-rmw-fastrtps-cpp ros-jazzy-std-msgs ros-jazzy-sensor-msgs
            ros-jazzy-diagnostic-msgs ros-jazzy-visualization-msgs ros-jazzy-geometry-msgs)

use_system_ros=0
if [[ -n "${ROS_DISTRO:-}" ]] && "$PY" -c "import rclpy" >/dev/null 2>&1; then
  use_system_ros=1
fi

stamp_inputs() {
  # msg/, interfaces/vision_msgs and the interface build are inputs too: a changed message regenerates the interfaces
  cat "$ROOT/setup.py" "$ROOT/scripts/setup_env.sh" "$ROOT/scripts/build_interfaces.sh" "$ROOT/CMakeLists.txt" \
    "$ROOT/package.xml" "$ROOT"/msg/*.msg "$ROOT"/interfaces/vision_msgs/{package.xml,CMakeLists.txt,msg/*.msg} \
    2>/dev/null
  "$PY" --version 2>&1
  uname -m
  echo "system_ros=$use_system_ros"
}
want="$(stamp_inputs | sha256sum | cut -d' ' -f1)"
if [[ -f "$VENV/.agra_stamp" && "$(cat "$VENV/.agra_stamp")" == "$want" && -x "$VENV/bin/agra-ros" ]]; then
  return 0 2>/dev/null || exit 0
fi

echo "[setup] creating/refreshing venv at $VENV" >&2
if [[ ! -x "$VENV/bin/python" ]]; then
  if [[ $use_system_ros == 1 ]]; then
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip setuptools wheel

if [[ $use_system_ros == 0 ]]; then
  echo "[setup] no ROS 2 distro sourced: installing the ROS 2 Jazzy wheels from PyPI" >&2
  "${PIP[@]}" install -q "${ROS_WHEELS[@]}"
fi

# torch + torchvision must be a matched pair. Where known-good pairs exist for this platform, pin them; else take
# the registry's default builds.
if ! "$VENV/bin/python" -c "import torch, torchvision; from torchvision.ops import nms" >/dev/null 2>&1; then
  case "$(uname -m)-$("$VENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')" in
    x86_64-3.11) TORCH=(torch==2.14.1 torchvision==0.29.1) ;;
    aarch64-*)   TORCH=(torch==2.9.1 torchvision==0.24.1) ;;
    *)           TORCH=(torch torchvision) ;;
  esac
  echo "[setup] installing ${TORCH[*]}" >&2
  "${PIP[@]}" install -q "${TORCH[@]}"
fi

echo "[setup] installing agra_ros (editable) with dev extras" >&2
"${PIP[@]}" install -q -e "$ROOT[dev]"
# the package's own interfaces (msg/ -> agra_ros.msg), generated into the venv: nothing to source afterwards.
# Stops here with one line naming what is missing (cmake, a compiler, the Python headers) when it cannot.
bash "$ROOT/scripts/build_interfaces.sh" "$VENV"
# launch, launch_ros and ros2cli (`ros2 launch`, test/test_launch.py) are on no package registry; the developers'
# machines and CI have them in ../shared/ros2-launch (its README: install.sh VENV, idempotent). Not fatal: without
# them the launch test reports a skip. With a sourced ROS distro its own launch stack is used.
LAUNCH_INSTALLER="$ROOT/../shared/ros2-launch/install.sh"
if [[ $use_system_ros == 0 && -f "$LAUNCH_INSTALLER" ]]; then
  echo "[setup] adding the ROS 2 launch stack from $LAUNCH_INSTALLER" >&2
  if ! bash "$LAUNCH_INSTALLER" "$VENV" >&2; then
    echo "[setup] WARNING: the launch stack could not be installed (see above); the launch test will be skipped" >&2
  fi
fi
echo "$want" > "$VENV/.agra_stamp"
# real camera clips and photos for the demo (Debian packages, into ~/.cache/agra_ros/media); not fatal: without
# them the demo runs the synthetic camera
if ! "$VENV/bin/agra-ros" fetch-media >&2; then
  echo "[setup] WARNING: the real camera media could not be fetched (see above); the demo will use the synthetic camera" >&2
fi
echo "[setup] done" >&2
