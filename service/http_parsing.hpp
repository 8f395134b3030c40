// Parsers for the parts of an HTTP request the server library leaves to us: percent-encoded
// paths and query strings, and multipart/form-data bodies (RFC 7578). Pure functions over bytes
// already received, so that they can be fuzzed on their own (tests/fuzz/).
//
// Every function bounds what it produces by the input it is given: parts and query pairs are
// views or copies of the input, counted against the limits below.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http_server.hpp"

namespace dermcds::service {

// More parts than this in one form is not an upload our API defines; refused rather than
// allocating a vector entry for each of millions of empty parts in a 20 MB body.
inline constexpr std::size_t kMaxFormParts = 256;
inline constexpr std::size_t kMaxQueryParameters = 256;

// "%41+b" -> "A+b" (plus_is_space: "A b", as in query strings). Invalid escapes are kept as
// they are, the way browsers and cpp-httplib treat them.
std::string percent_decode(std::string_view text, bool plus_is_space);

// "a=1&b=%20" -> {{"a","1"},{"b"," "}}. Throws Error(kInvalidArgument) beyond kMaxQueryParameters.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

// The boundary parameter of a multipart Content-Type; nullopt when absent or invalid
// (RFC 2046: 1 to 70 characters).
std::optional<std::string> multipart_boundary(std::string_view content_type);

// The parts of a multipart/form-data body; their content views point into `body`. Throws
// Error(kInvalidArgument) naming what is wrong (no opening delimiter, unterminated part headers,
// no closing delimiter, too many parts). File names are dropped (http_server.hpp, privacy).
std::vector<FormPart> parse_multipart(std::string_view body, std::string_view boundary);

}  // namespace dermcds::service
