"""derm-cds export pipeline: PyTorch checkpoint -> ONNX model package.

Run with Debian's interpreter (/usr/bin/python3), which has torch 1.13, torchvision 0.14 and onnx.
"""

EXPORTER_NAME = "dermcds_export"
# Bump when a change here can change an exported artifact: the lifecycle rebuilds packages
# whose recorded exporter version differs.
EXPORTER_VERSION = "1"
