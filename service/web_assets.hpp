// Files compiled into the binary (web/ and docs/api/openapi.yaml; see embed_assets.cmake), so
// the service serves its page and API description without depending on its install location.
#pragma once

#include <span>
#include <string_view>

namespace dermcds::service {

struct WebAsset {
  std::string_view name;  // file name: "index.html", "app.js", "openapi.yaml"
  std::string_view content;
};

std::span<const WebAsset> web_assets();  // defined in the generated web_assets.cpp

}  // namespace dermcds::service
