# Cross build for 64-bit ARM Linux (Jetson, Graviton, Raspberry Pi 4/5; Android is in docs/android.md)
# with Debian's cross compiler, g++-aarch64-linux-gnu:
#
#   cmake -S . -B build-arm64 -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#     -DDERMCDS_BUILD_SERVICE=OFF -DDERMCDS_BUILD_CONVERTER=OFF -DDERMCDS_BUILD_BENCH=OFF
#
# Where each part of the target system comes from:
#   libc, libstdc++, libgcc   Debian's cross packages in /usr/aarch64-linux-gnu (the compiler's own)
#   third-party libraries     .deps/sysroot-arm64: Debian 12 arm64 packages that scripts/provision.sh
#                             unpacks (libjpeg-turbo, libpng, libexif, OpenSSL, spdlog, fmt, nlohmann-json,
#                             CLI11, GoogleTest)
#   ONNX Runtime, TFLite      .deps/{onnxruntime,tflite}/lib/arm64 (cmake/Find*.cmake pick the folder
#                             from CMAKE_SYSTEM_PROCESSOR)
#
# The binaries run here under the static qemu-aarch64 that provisioning unpacks (.deps/qemu):
# CMAKE_CROSSCOMPILING_EMULATOR makes ctest and gtest_discover_tests start every test program
# through it, so `ctest` in the build tree runs the arm64 tests as they are.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(DERMCDS_CROSS_TRIPLET aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${DERMCDS_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${DERMCDS_CROSS_TRIPLET}-g++)

get_filename_component(_dermcds_root "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
set(DERMCDS_ARM64_SYSROOT "${_dermcds_root}/.deps/sysroot-arm64" CACHE PATH
    "Unpacked Debian arm64 packages the cross build links (scripts/provision.sh)")
set(DERMCDS_CROSS_LIBC_ROOT /usr/${DERMCDS_CROSS_TRIPLET} CACHE PATH
    "Debian's cross libc/libstdc++ tree: the qemu-aarch64 -L prefix for the dynamic loader")
set(DERMCDS_QEMU_AARCH64 "${_dermcds_root}/.deps/qemu/qemu-aarch64" CACHE FILEPATH
    "qemu-aarch64 (user mode, static) that runs the cross-built tests")
# The processor qemu emulates. Its default ("max") offers SVE, which ONNX Runtime's kernels then
# use and which qemu emulates about fifteen times slower than NEON (MobileNetV3: 46 s against
# 3 s per image). Neoverse N1 is Armv8.2-A with dot product and FP16 and no SVE, the feature set
# of the devices derm-cds targets (Jetson Orin's Cortex-A78AE, Graviton2), so the kernels that run
# here are the ones that run there.
set(DERMCDS_QEMU_CPU neoverse-n1 CACHE STRING "qemu -cpu model for the emulated tests")

if(NOT EXISTS "${DERMCDS_ARM64_SYSROOT}/.complete")
  message(FATAL_ERROR "no arm64 sysroot at ${DERMCDS_ARM64_SYSROOT}: run scripts/provision.sh (or make setup)")
endif()

# The sysroot holds packages, not a whole system: it is searched for libraries, headers and CMake
# packages only, never for programs (those run on the host).
set(CMAKE_FIND_ROOT_PATH "${DERMCDS_ARM64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_LIBRARY_ARCHITECTURE ${DERMCDS_CROSS_TRIPLET})

# Debian puts some headers in the multiarch include directory (OpenSSL's configuration.h), which
# the cross compiler only searches inside its own tree. -rpath-link lets the linker resolve the
# libraries that sysroot libraries themselves need (libspdlog -> libfmt, libpng -> libz).
set(_dermcds_libdirs "${DERMCDS_ARM64_SYSROOT}/usr/lib/${DERMCDS_CROSS_TRIPLET}:${DERMCDS_ARM64_SYSROOT}/lib/${DERMCDS_CROSS_TRIPLET}")
set(CMAKE_C_FLAGS_INIT "-isystem ${DERMCDS_ARM64_SYSROOT}/usr/include/${DERMCDS_CROSS_TRIPLET}")
set(CMAKE_CXX_FLAGS_INIT "-isystem ${DERMCDS_ARM64_SYSROOT}/usr/include/${DERMCDS_CROSS_TRIPLET}")
foreach(kind EXE SHARED MODULE)
  set(CMAKE_${kind}_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_dermcds_libdirs}")
endforeach()

# pkg-config (libexif) must read the arm64 .pc files and prefix their paths with the sysroot.
set(ENV{PKG_CONFIG_LIBDIR} "${DERMCDS_ARM64_SYSROOT}/usr/lib/${DERMCDS_CROSS_TRIPLET}/pkgconfig:${DERMCDS_ARM64_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${DERMCDS_ARM64_SYSROOT}")
set(ENV{PKG_CONFIG_PATH} "")

# -L: the dynamic loader and libc come from the cross tree; -E: the sysroot's libraries are found
# through LD_LIBRARY_PATH (the executables' RUNPATH names them too, but not for libraries they
# load indirectly). ONNX Runtime and TFLite are found through the RUNPATH CMake writes.
set(CMAKE_CROSSCOMPILING_EMULATOR
    "${DERMCDS_QEMU_AARCH64};-cpu;${DERMCDS_QEMU_CPU};-L;${DERMCDS_CROSS_LIBC_ROOT};-E;LD_LIBRARY_PATH=${_dermcds_libdirs}")
