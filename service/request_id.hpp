// Request ids: the correlation key between a client, the access log and a response.
#pragma once

#include <string>
#include <string_view>

namespace dermcds::service {

// The client's own id when it is a plausible token (1-64 of [A-Za-z0-9._:-]), so that a calling
// system can follow its request through our logs; otherwise a fresh random 128-bit hex id.
// A client id is never trusted further than that: it cannot inject log syntax or header lines.
std::string make_request_id(std::string_view offered);

}  // namespace dermcds::service
