#include "host_tensor.hpp"

#include <stdexcept>

namespace dermcds::converter {

std::int64_t element_count(const Shape& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

std::string shape_text(const Shape& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ',';
    out += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
  }
  return out + "]";
}

HostTensor HostTensor::from_floats(Shape shape, std::vector<float> values) {
  HostTensor t;
  t.kind = Kind::kFloat;
  t.shape = std::move(shape);
  t.floats = std::move(values);
  if (static_cast<std::int64_t>(t.floats.size()) != t.size()) throw std::invalid_argument("float tensor size does not match its shape");
  return t;
}

HostTensor HostTensor::from_ints(Shape shape, std::vector<std::int64_t> values) {
  HostTensor t;
  t.kind = Kind::kInt;
  t.shape = std::move(shape);
  t.ints = std::move(values);
  if (static_cast<std::int64_t>(t.ints.size()) != t.size()) throw std::invalid_argument("integer tensor size does not match its shape");
  return t;
}

double HostTensor::as_double(std::int64_t i) const {
  return is_float() ? static_cast<double>(floats[static_cast<std::size_t>(i)]) : static_cast<double>(ints[static_cast<std::size_t>(i)]);
}

std::int64_t HostTensor::as_int(std::int64_t i) const {
  return is_float() ? static_cast<std::int64_t>(floats[static_cast<std::size_t>(i)]) : ints[static_cast<std::size_t>(i)];
}

std::vector<float> HostTensor::to_floats() const {
  if (is_float()) return floats;
  return std::vector<float>(ints.begin(), ints.end());
}

std::vector<std::int64_t> HostTensor::to_ints() const {
  if (!is_float()) return ints;
  std::vector<std::int64_t> out(floats.size());
  for (std::size_t i = 0; i < floats.size(); ++i) out[i] = static_cast<std::int64_t>(floats[i]);
  return out;
}

namespace {

std::vector<std::int64_t> strides_of(const Shape& shape) {
  std::vector<std::int64_t> strides(shape.size(), 1);
  for (std::size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

// Calls f(out_index, in_index) for every element of a strided view of the input.
template <typename F>
void for_each_mapped(const Shape& out_shape, const std::vector<std::int64_t>& in_strides_for_out_dims, F&& f) {
  const std::int64_t total = element_count(out_shape);
  const std::size_t rank = out_shape.size();
  std::vector<std::int64_t> index(rank, 0);
  std::int64_t in = 0;
  for (std::int64_t out = 0; out < total; ++out) {
    f(out, in);
    for (std::size_t d = rank; d-- > 0;) {
      ++index[d];
      in += in_strides_for_out_dims[d];
      if (index[d] < out_shape[d]) break;
      in -= index[d] * in_strides_for_out_dims[d];
      index[d] = 0;
    }
  }
}

template <typename T>
std::vector<T> gather(const std::vector<T>& in, const Shape& out_shape, const std::vector<std::int64_t>& strides) {
  std::vector<T> out(static_cast<std::size_t>(element_count(out_shape)));
  for_each_mapped(out_shape, strides,
                  [&](std::int64_t o, std::int64_t i) { out[static_cast<std::size_t>(o)] = in[static_cast<std::size_t>(i)]; });
  return out;
}

}  // namespace

HostTensor transpose(const HostTensor& in, const std::vector<int>& perm) {
  if (perm.size() != in.shape.size()) throw std::invalid_argument("transpose permutation has the wrong rank");
  const std::vector<std::int64_t> in_strides = strides_of(in.shape);
  Shape out_shape(perm.size());
  std::vector<std::int64_t> strides(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) {
    out_shape[i] = in.shape[static_cast<std::size_t>(perm[i])];
    strides[i] = in_strides[static_cast<std::size_t>(perm[i])];
  }
  HostTensor out;
  out.kind = in.kind;
  out.shape = out_shape;
  if (in.is_float())
    out.floats = gather(in.floats, out_shape, strides);
  else
    out.ints = gather(in.ints, out_shape, strides);
  return out;
}

HostTensor reshape(HostTensor in, Shape shape) {
  if (element_count(shape) != in.size()) throw std::invalid_argument("reshape changes the element count");
  in.shape = std::move(shape);
  return in;
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const std::int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      throw std::invalid_argument("shapes " + shape_text(a) + " and " + shape_text(b) + " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

HostTensor broadcast_to(const HostTensor& in, const Shape& shape) {
  if (broadcast_shapes(in.shape, shape) != shape)
    throw std::invalid_argument("cannot broadcast " + shape_text(in.shape) + " to " + shape_text(shape));
  const std::size_t offset = shape.size() - in.shape.size();
  const std::vector<std::int64_t> in_strides = strides_of(in.shape);
  std::vector<std::int64_t> strides(shape.size(), 0);
  for (std::size_t i = offset; i < shape.size(); ++i) strides[i] = in.shape[i - offset] == 1 ? 0 : in_strides[i - offset];
  HostTensor out;
  out.kind = in.kind;
  out.shape = shape;
  if (in.is_float())
    out.floats = gather(in.floats, shape, strides);
  else
    out.ints = gather(in.ints, shape, strides);
  return out;
}

}  // namespace dermcds::converter
