// The version each emitted operator declares. TFLite versions an operator when a kernel gains a
// capability (int8 inputs, dilation, keep_num_dims ...); a runtime refuses a model whose version
// it does not register. We declare the lowest version that covers what the operator uses, as
// TFLite's own converter does, so TFLite 2.9's builtin resolver accepts every model: the tests
// load every converted model in TFLite 2.9, which checks these numbers.
#pragma once

#include "tflite_model.hpp"

namespace dermcds::converter {

int operator_version(const TflModel& model, const TflOperator& op);

}  // namespace dermcds::converter
