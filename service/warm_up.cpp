#include "warm_up.hpp"

#include <algorithm>
#include <cmath>

#include "dermcds/error.hpp"

namespace dermcds::service {

namespace {

// A textured synthetic photograph a little larger than the model's resize target, so that
// warm-up runs the same decode-free path (resize, crop, normalize, infer) real images take.
RgbImage warm_up_image(const InputSpec& input) {
  RgbImage image;
  image.width = input.resize_size + 24;
  image.height = input.resize_size + 8;
  image.pixels.resize(static_cast<std::size_t>(3) * image.width * image.height);
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x)
      for (int c = 0; c < 3; ++c)
        image.pixels[(static_cast<std::size_t>(y) * image.width + x) * 3 + c] =
            static_cast<std::uint8_t>((x * (3 + c) + y * (5 - c) + c * 61) & 0xff);
  return image;
}

}  // namespace

void warm_up(const Classifier& classifier, int full_batch, int rounds) {
  const PreparedImage prepared = classifier.prepare(warm_up_image(classifier.manifest().input));
  const std::vector<PreparedImage> full(static_cast<std::size_t>(std::max(full_batch, 1)), prepared);
  for (int round = 0; round < rounds; ++round) {
    const auto single = classifier.classify_batch({&prepared, 1});
    const auto many = full_batch > 1 ? classifier.classify_batch(full) : single;
    for (const auto* results : {&single, &many})
      for (const ClassificationResult& r : *results)
        for (float p : r.probabilities)
          if (!std::isfinite(p))
            throw Error(ErrorCode::kModelMismatch, classifier.manifest().name + "/" + classifier.manifest().version +
                                                       ": warm-up inference produced non-finite probabilities");
  }
}

}  // namespace dermcds::service
