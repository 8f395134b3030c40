#include "classifier_inputs.hpp"

#include <algorithm>

#include "dermcds/file_bytes.hpp"
#include "dermcds/image.hpp"
#include "dermcds/postprocess.hpp"

namespace dermcds::test {

std::vector<std::filesystem::path> images_in(const std::filesystem::path& dir, std::size_t limit) {
  std::vector<std::filesystem::path> files;
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string ext = entry.path().extension().string();
    if (entry.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.size() > limit) files.resize(limit);
  return files;
}

std::vector<PreparedInput> prepare_inputs(const std::vector<std::filesystem::path>& images, const InputSpec& spec) {
  std::vector<PreparedInput> out;
  for (const auto& path : images) {
    const RgbImage image = decode_image(read_file_bytes(path));
    out.push_back({path.filename().string(), preprocess(image, spec, TensorLayout::kNCHW), preprocess(image, spec, TensorLayout::kNHWC)});
  }
  return out;
}

std::vector<float> probabilities(const Tensor& logits) { return softmax(logits.data); }

}  // namespace dermcds::test
