// Warm-up before a loaded version is published: the shapes the batcher will use most (a lone
// request and a full batch) run once or more on a synthetic photograph, so that the first real
// request does not pay for lazy initialisation, and a model that answers non-finite
// probabilities never becomes ready.
#pragma once

#include "dermcds/classifier.hpp"

namespace dermcds::service {

// Throws kModelMismatch when an answer is not finite, and whatever classification throws.
void warm_up(const Classifier& classifier, int full_batch, int rounds);

}  // namespace dermcds::service
