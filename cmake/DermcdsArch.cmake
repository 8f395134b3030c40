# The folder name provisioning uses for the target processor's prebuilt libraries.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(DERMCDS_ARCH_DIR arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(DERMCDS_ARCH_DIR x64)
else()
  message(FATAL_ERROR "derm-cds has prebuilt runtimes for x86_64 and aarch64 only, not ${CMAKE_SYSTEM_PROCESSOR}")
endif()
