// multipart/form-data upload parsing and the query string (service/http_parsing.cpp). The input's
// first line is the Content-Type (or query string), the rest the body.
#include "fuzz_target.hpp"
#include "http_parsing.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dermcds;
  const std::string_view input = fuzz::text(data, size);
  const std::size_t newline = input.find('\n');
  const std::string_view first = input.substr(0, newline);
  const std::string_view body = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  fuzz::refuses_cleanly([&] { (void)service::parse_query(first); });
  const auto boundary = service::multipart_boundary(first);
  if (boundary) {
    if (boundary->empty() || boundary->size() > 70) __builtin_trap();
    fuzz::refuses_cleanly([&] {
      for (const auto& part : service::parse_multipart(body, *boundary)) {
        // Every part's content lies inside the body it was parsed from.
        if (part.content.data() < body.data() || part.content.data() + part.content.size() > body.data() + body.size()) __builtin_trap();
      }
    });
  }
  return 0;
}
