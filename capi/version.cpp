#include "dermcds/dermcds.h"

extern "C" {

uint32_t dermcds_abi_version(void) { return DERMCDS_ABI_VERSION; }

const char* dermcds_version(void) { return DERMCDS_VERSION; }

}  // extern "C"
