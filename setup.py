"""agra_ros: installs both as a ROS 2 ament_python package (colcon) and as a plain pip package.

ROS 2 Python packages (rclpy, message packages) are deliberately NOT install_requires: with a sourced ROS distro
they come from the distro, and a pip copy would shadow it. Without a distro, ./agra.sh installs the ROS 2 Jazzy
wheels from PyPI into the venv (see scripts/setup_env.sh).
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "agra_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={
        PACKAGE: [
            "data/*.pt",
            "data/*.json",
            "data/*.csv",
            "data/*.npz",
            "data/cost_tables/*.json",
            "data/cost_tables/ssd/*.json",
            "data/*.txt",
            "data/sim_workload/*.npz",
        ]
    },
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (
            f"share/{PACKAGE}/config",
            glob("config/*.yaml")
            + glob("config/*.xml")
            + glob("config/*.rviz")
            + glob("config/*.json")
            + glob("config/*.perspective"),
        ),
        (f"share/{PACKAGE}/config/traces", glob("config/traces/*.yaml")),
        (f"share/{PACKAGE}/config/devices", glob("config/devices/*.yaml")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "opencv-python-headless",
        "pyyaml",
        "psutil",
        "rich",
        "tqdm",
        "matplotlib",
        "gymnasium",
        "torch",
        "torchvision",
        "torchmetrics",
        "pycocotools",
        "rosbags",  # recordings: rosbag2 folders with MCAP storage, written and read without a ROS install
        "foxglove-sdk",  # `agra-ros view`: the live Foxglove WebSocket server (no ROS distro needed)
        "tflite",  # flatbuffer reader for `agra-ros import-detector` (no TFLite runtime needed for inference)
    ],
    extras_require={
        "jetson": ["jetson-stats"],  # the jtop power/temperature backend (needs jtop.service on the Jetson)
        "nvidia": ["nvidia-ml-py"],  # the NVML backend on machines with an NVIDIA driver
        "test": ["pytest", "pytest-timeout", "ai-edge-litert", "mcap-ros2-support", "websockets"],
        "dev": [
            "pytest",
            "pytest-xdist",
            "pytest-timeout",
            "ruff",
            "stable-baselines3",
            "colcon-common-extensions",
            "mcap-ros2-support",
            "websockets",  # the Foxglove client of the viewer test
            "ai-edge-litert",  # the TFLite reference interpreter: converter parity test only
        ],
    },
    zip_safe=False,
    maintainer="agra_ros maintainers",
    maintainer_email="maintainers@agra-ros.dev",
    description="Adaptive Granularity Resource Allocation for object detection on ROS 2 robots",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "agra-ros = agra_ros.cli:main",
            "camera_source_node = agra_ros.nodes.camera_source:main",
            "device_monitor_node = agra_ros.nodes.device_monitor:main",
            "perception_node = agra_ros.nodes.perception:main",
            "perception_server_node = agra_ros.nodes.perception_server:main",
            "viewer_node = agra_ros.nodes.viewer:main",
            "policy_node = agra_ros.nodes.policy:main",
            "recorder_node = agra_ros.nodes.recorder:main",
        ],
    },
)
