// Reading the image of a POST /v1/classify request: a raw image/jpeg or image/png body, or a
// multipart/form-data form with the image in a file field (named "image", or the only file), and
// the optional model, version and runtime as form fields or query parameters.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "http_server.hpp"

namespace dermcds::service {

struct ImageUpload {
  std::string_view bytes;  // points into the request, which must outlive the upload
  std::string model;       // "" when the request names none
  std::string version;
  std::string runtime;
};

// Why a request carries no image we would read: answered 415 Unsupported Media Type.
struct MediaTypeRefusal {
  std::string message;
};

// nullopt + `refusal` filled when the media type (of the body or of the form's image part) is
// not one we accept. The image bytes themselves are checked later, by decoding.
std::optional<ImageUpload> read_image_upload(const HttpRequest& request, MediaTypeRefusal& refusal);

}  // namespace dermcds::service
