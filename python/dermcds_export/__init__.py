"""derm-cds export pipeline: PyTorch checkpoint -> ONNX model package.

Run with Debian's interpreter (/usr/bin/python3), which has torch 1.13, torchvision 0.14 and onnx.
"""

import os

# libgomp's worker threads spin while they wait for work. On a small machine shared with a
# compiler or another job, a spinning worker keeps a core away from the thread it is waiting for
# and training steps become up to ten times slower; passive waiting costs nothing when the machine
# is idle. It must be set before torch (and with it libgomp) is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

EXPORTER_NAME = "dermcds_export"
# Bump when a change here can change an exported artifact: the lifecycle rebuilds packages
# whose recorded exporter version differs.
EXPORTER_VERSION = "1"
