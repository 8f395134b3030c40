# Finds the ONNX Runtime C library that scripts/provision.sh unpacks into .deps/onnxruntime:
#   include/            C and C++ API headers (Debian trixie libonnxruntime-dev)
#   lib/<x64|arm64>/    libonnxruntime.so.1 (from the onnxruntime-node npm package)
# Defines the imported target OnnxRuntime::OnnxRuntime (global: found by runtimes/onnxruntime, also used
# by tests and benchmarks). Set OnnxRuntime_ROOT to look elsewhere.
include(FindPackageHandleStandardArgs)
include(${CMAKE_CURRENT_LIST_DIR}/DermcdsArch.cmake)

find_path(OnnxRuntime_INCLUDE_DIR onnxruntime_c_api.h
  HINTS ${OnnxRuntime_ROOT} ${DERMCDS_DEPS_DIR}/onnxruntime
  PATH_SUFFIXES include include/onnxruntime
  NO_CMAKE_FIND_ROOT_PATH)
find_library(OnnxRuntime_LIBRARY NAMES libonnxruntime.so.1 onnxruntime
  HINTS ${OnnxRuntime_ROOT} ${DERMCDS_DEPS_DIR}/onnxruntime
  PATH_SUFFIXES lib/${DERMCDS_ARCH_DIR}
  NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)

find_package_handle_standard_args(OnnxRuntime
  REQUIRED_VARS OnnxRuntime_LIBRARY OnnxRuntime_INCLUDE_DIR
  REASON_FAILURE_MESSAGE "run scripts/provision.sh (or make setup) to fetch ONNX Runtime into .deps/")

if(OnnxRuntime_FOUND AND NOT TARGET OnnxRuntime::OnnxRuntime)
  add_library(OnnxRuntime::OnnxRuntime SHARED IMPORTED GLOBAL)
  set_target_properties(OnnxRuntime::OnnxRuntime PROPERTIES
    IMPORTED_LOCATION ${OnnxRuntime_LIBRARY}
    IMPORTED_SONAME libonnxruntime.so.1
    INTERFACE_INCLUDE_DIRECTORIES ${OnnxRuntime_INCLUDE_DIR})
endif()
mark_as_advanced(OnnxRuntime_INCLUDE_DIR OnnxRuntime_LIBRARY)
