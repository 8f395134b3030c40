# Finds the TensorFlow Lite 2.9 C library that scripts/provision.sh unpacks into .deps/tflite:
#   include/tensorflow/lite/c/   C API headers
#   lib/<x64|arm64>/             libtensorflowlite_c.so (from the tfjs-tflite-node npm package)
# Defines the imported target TensorFlowLite::C (global: found by runtimes/tflite, also used by the
# converter, tests and benchmarks). Set TensorFlowLite_ROOT to look elsewhere.
include(FindPackageHandleStandardArgs)
include(${CMAKE_CURRENT_LIST_DIR}/DermcdsArch.cmake)

find_path(TensorFlowLite_INCLUDE_DIR tensorflow/lite/c/c_api.h
  HINTS ${TensorFlowLite_ROOT} ${DERMCDS_DEPS_DIR}/tflite
  PATH_SUFFIXES include
  NO_CMAKE_FIND_ROOT_PATH)
find_library(TensorFlowLite_LIBRARY NAMES tensorflowlite_c
  HINTS ${TensorFlowLite_ROOT} ${DERMCDS_DEPS_DIR}/tflite
  PATH_SUFFIXES lib/${DERMCDS_ARCH_DIR}
  NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)

find_package_handle_standard_args(TensorFlowLite
  REQUIRED_VARS TensorFlowLite_LIBRARY TensorFlowLite_INCLUDE_DIR
  REASON_FAILURE_MESSAGE "run scripts/provision.sh (or make setup) to fetch TensorFlow Lite into .deps/")

if(TensorFlowLite_FOUND AND NOT TARGET TensorFlowLite::C)
  add_library(TensorFlowLite::C SHARED IMPORTED GLOBAL)
  set_target_properties(TensorFlowLite::C PROPERTIES
    IMPORTED_LOCATION ${TensorFlowLite_LIBRARY}
    IMPORTED_SONAME libtensorflowlite_c.so
    INTERFACE_INCLUDE_DIRECTORIES ${TensorFlowLite_INCLUDE_DIR})
endif()
mark_as_advanced(TensorFlowLite_INCLUDE_DIR TensorFlowLite_LIBRARY)
