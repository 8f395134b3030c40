#include "attributes.hpp"

#include <cstring>

#include "dermcds/error.hpp"
#include "float16.hpp"

namespace dermcds::converter {

namespace {

const char* type_name(onnx::AttributeProto::AttributeType type) {
  switch (type) {
    case onnx::AttributeProto::FLOAT:
      return "float";
    case onnx::AttributeProto::INT:
      return "int";
    case onnx::AttributeProto::STRING:
      return "string";
    case onnx::AttributeProto::TENSOR:
      return "tensor";
    case onnx::AttributeProto::FLOATS:
      return "floats";
    case onnx::AttributeProto::INTS:
      return "ints";
    default:
      return "other";
  }
}

template <typename T>
std::vector<T> read_raw(const std::string& raw, std::size_t count, const std::string& what) {
  if (raw.size() != count * sizeof(T))
    throw Error(ErrorCode::kInvalidArgument,
                what + ": raw data holds " + std::to_string(raw.size()) + " bytes, the shape needs " + std::to_string(count * sizeof(T)));
  std::vector<T> out(count);
  if (count) std::memcpy(out.data(), raw.data(), raw.size());  // ONNX raw data is little-endian, as is every host we build for
  return out;
}

}  // namespace

bool Attributes::has(const std::string& name) const { return node_.attributes.count(name) != 0; }

const onnx::AttributeProto* Attributes::lookup(const std::string& name, onnx::AttributeProto::AttributeType type) {
  read_.insert(name);
  const auto it = node_.attributes.find(name);
  if (it == node_.attributes.end()) return nullptr;
  if (it->second.type() != type)
    throw Error(ErrorCode::kInvalidArgument, node_.label() + ": attribute '" + name + "' is " + type_name(it->second.type()) +
                                                 ", ONNX defines it as " + type_name(type));
  return &it->second;
}

std::int64_t Attributes::get_int(const std::string& name, std::int64_t fallback) {
  const auto* a = lookup(name, onnx::AttributeProto::INT);
  return a ? a->i() : fallback;
}

std::optional<std::int64_t> Attributes::find_int(const std::string& name) {
  const auto* a = lookup(name, onnx::AttributeProto::INT);
  return a ? std::optional<std::int64_t>(a->i()) : std::nullopt;
}

float Attributes::get_float(const std::string& name, float fallback) {
  const auto* a = lookup(name, onnx::AttributeProto::FLOAT);
  return a ? a->f() : fallback;
}

std::string Attributes::get_string(const std::string& name, const std::string& fallback) {
  const auto* a = lookup(name, onnx::AttributeProto::STRING);
  return a ? a->s() : fallback;
}

std::vector<std::int64_t> Attributes::get_ints(const std::string& name, const std::vector<std::int64_t>& fallback) {
  const auto* a = lookup(name, onnx::AttributeProto::INTS);
  return a ? std::vector<std::int64_t>(a->ints().begin(), a->ints().end()) : fallback;
}

std::optional<std::vector<std::int64_t>> Attributes::find_ints(const std::string& name) {
  const auto* a = lookup(name, onnx::AttributeProto::INTS);
  if (!a) return std::nullopt;
  return std::vector<std::int64_t>(a->ints().begin(), a->ints().end());
}

std::vector<float> Attributes::get_floats(const std::string& name, const std::vector<float>& fallback) {
  const auto* a = lookup(name, onnx::AttributeProto::FLOATS);
  return a ? std::vector<float>(a->floats().begin(), a->floats().end()) : fallback;
}

std::optional<HostTensor> Attributes::find_tensor(const std::string& name) {
  const auto* a = lookup(name, onnx::AttributeProto::TENSOR);
  if (!a) return std::nullopt;
  return tensor_from_proto(a->t(), node_.label() + " attribute '" + name + "'");
}

void Attributes::check_all_read() const {
  for (const auto& [name, attribute] : node_.attributes)
    if (!read_.count(name))
      throw Error(ErrorCode::kUnsupportedModel, node_.label() + ": attribute '" + name + "' is not supported by the converter");
}

HostTensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& what) {
  if (proto.data_location() == onnx::TensorProto::EXTERNAL || proto.external_data_size() > 0)
    throw Error(ErrorCode::kUnsupportedModel,
                what +
                    " keeps its data in an external file; save the model with its weights inside the .onnx file "
                    "(onnx.save(model, path, save_as_external_data=False))");
  Shape shape(proto.dims().begin(), proto.dims().end());
  for (std::int64_t d : shape)
    if (d < 0) throw Error(ErrorCode::kInvalidArgument, what + ": negative dimension in " + shape_text(shape));
  const auto count = static_cast<std::size_t>(element_count(shape));
  const bool raw = proto.has_raw_data();
  auto check_count = [&](std::size_t n) {
    if (n != count)
      throw Error(ErrorCode::kInvalidArgument,
                  what + ": holds " + std::to_string(n) + " values, its shape " + shape_text(shape) + " needs " + std::to_string(count));
  };

  switch (proto.data_type()) {
    case onnx::TensorProto::FLOAT: {
      std::vector<float> v =
          raw ? read_raw<float>(proto.raw_data(), count, what) : std::vector<float>(proto.float_data().begin(), proto.float_data().end());
      check_count(v.size());
      return HostTensor::from_floats(shape, std::move(v));
    }
    case onnx::TensorProto::DOUBLE: {
      std::vector<double> d = raw ? read_raw<double>(proto.raw_data(), count, what)
                                  : std::vector<double>(proto.double_data().begin(), proto.double_data().end());
      check_count(d.size());
      return HostTensor::from_floats(shape, std::vector<float>(d.begin(), d.end()));
    }
    case onnx::TensorProto::FLOAT16: {
      std::vector<std::uint16_t> h;
      if (raw) {
        h = read_raw<std::uint16_t>(proto.raw_data(), count, what);
      } else {
        for (std::int32_t bits : proto.int32_data()) h.push_back(static_cast<std::uint16_t>(bits));
      }
      check_count(h.size());
      std::vector<float> v(h.size());
      for (std::size_t i = 0; i < h.size(); ++i) v[i] = half_to_float(h[i]);
      return HostTensor::from_floats(shape, std::move(v));
    }
    case onnx::TensorProto::INT64: {
      std::vector<std::int64_t> v = raw ? read_raw<std::int64_t>(proto.raw_data(), count, what)
                                        : std::vector<std::int64_t>(proto.int64_data().begin(), proto.int64_data().end());
      check_count(v.size());
      return HostTensor::from_ints(shape, std::move(v));
    }
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::BOOL: {
      std::vector<std::int64_t> v;
      if (raw) {
        switch (proto.data_type()) {
          case onnx::TensorProto::INT32:
            for (auto x : read_raw<std::int32_t>(proto.raw_data(), count, what)) v.push_back(x);
            break;
          case onnx::TensorProto::INT16:
            for (auto x : read_raw<std::int16_t>(proto.raw_data(), count, what)) v.push_back(x);
            break;
          case onnx::TensorProto::UINT16:
            for (auto x : read_raw<std::uint16_t>(proto.raw_data(), count, what)) v.push_back(x);
            break;
          case onnx::TensorProto::INT8:
            for (auto x : read_raw<std::int8_t>(proto.raw_data(), count, what)) v.push_back(x);
            break;
          default:
            for (auto x : read_raw<std::uint8_t>(proto.raw_data(), count, what)) v.push_back(x);
            break;
        }
      } else {
        v.assign(proto.int32_data().begin(), proto.int32_data().end());
      }
      check_count(v.size());
      return HostTensor::from_ints(shape, std::move(v));
    }
    case onnx::TensorProto::UINT32:
    case onnx::TensorProto::UINT64: {
      std::vector<std::int64_t> v;
      if (raw) {
        if (proto.data_type() == onnx::TensorProto::UINT32)
          for (auto x : read_raw<std::uint32_t>(proto.raw_data(), count, what)) v.push_back(x);
        else
          for (auto x : read_raw<std::uint64_t>(proto.raw_data(), count, what)) v.push_back(static_cast<std::int64_t>(x));
      } else {
        for (auto x : proto.uint64_data()) v.push_back(static_cast<std::int64_t>(x));
      }
      check_count(v.size());
      return HostTensor::from_ints(shape, std::move(v));
    }
    default:
      throw Error(ErrorCode::kUnsupportedModel,
                  what + " has element type " +
                      onnx::TensorProto::DataType_Name(static_cast<onnx::TensorProto::DataType>(proto.data_type())) +
                      ", which the converter does not handle");
  }
}

}  // namespace dermcds::converter
