#include "image_upload.hpp"

#include <algorithm>
#include <cctype>

namespace dermcds::service {

namespace {

bool is_image_type(std::string_view type) { return type == "image/jpeg" || type == "image/png"; }

// Form parts declare their own type; browsers send application/octet-stream for files whose
// extension they do not recognise, so that (or nothing) is left to the decoder to judge.
bool acceptable_part_type(std::string type) {
  type = type.substr(0, type.find(';'));
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return type.empty() || is_image_type(type) || type == "application/octet-stream";
}

std::string field_or_query(const HttpRequest& request, std::string_view name) {
  for (const FormPart& part : request.parts)
    if (!part.is_file && part.name == name) return std::string(part.content);
  return request.query(name).value_or("");
}

}  // namespace

std::optional<ImageUpload> read_image_upload(const HttpRequest& request, MediaTypeRefusal& refusal) {
  const std::string type = request.media_type();
  ImageUpload upload;
  if (is_image_type(type)) {
    upload.bytes = request.body;
  } else if (type == "multipart/form-data") {
    const FormPart* image = nullptr;
    for (const FormPart& part : request.parts)
      if (part.name == "image") image = &part;
    if (!image) {
      const auto files = std::count_if(request.parts.begin(), request.parts.end(), [](const FormPart& p) { return p.is_file; });
      if (files == 1) image = &*std::find_if(request.parts.begin(), request.parts.end(), [](const FormPart& p) { return p.is_file; });
    }
    if (!image) {
      refusal.message = "the form has no image: send the photo in a file field named \"image\"";
      return std::nullopt;
    }
    if (!acceptable_part_type(image->content_type)) {
      refusal.message = "the form's image part is " + image->content_type + "; send image/jpeg or image/png";
      return std::nullopt;
    }
    upload.bytes = image->content;
  } else {
    refusal.message = (type.empty() ? std::string("the request has no Content-Type") : "Content-Type " + type + " is not accepted") +
                      "; send image/jpeg, image/png or multipart/form-data with an \"image\" file";
    return std::nullopt;
  }
  upload.model = field_or_query(request, "model");
  upload.version = field_or_query(request, "version");
  upload.runtime = field_or_query(request, "runtime");
  return upload;
}

}  // namespace dermcds::service
