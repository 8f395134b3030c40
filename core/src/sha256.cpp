#include "dermcds/sha256.hpp"

#include <cstdio>
#include <memory>
#include <vector>

#include <openssl/evp.h>

#include "dermcds/error.hpp"

namespace dermcds {

namespace {

struct DigestContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using DigestContext = std::unique_ptr<EVP_MD_CTX, DigestContextDeleter>;

class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new()) {
    if (!context_ || EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1)
      throw Error(ErrorCode::kInternal, "OpenSSL could not initialise SHA-256");
  }
  void update(const void* data, std::size_t size) {
    if (EVP_DigestUpdate(context_.get(), data, size) != 1) throw Error(ErrorCode::kInternal, "SHA-256 update failed");
  }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(context_.get(), digest, &length) != 1) throw Error(ErrorCode::kInternal, "SHA-256 finalisation failed");
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
      out.push_back(kDigits[digest[i] >> 4]);
      out.push_back(kDigits[digest[i] & 0xf]);
    }
    return out;
  }

 private:
  DigestContext context_;
};

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

}  // namespace

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
  Sha256 sha;
  sha.update(bytes.data(), bytes.size());
  return sha.hex();
}

std::string sha256_file_hex(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(ErrorCode::kNotFound, "no such file: " + path.string());
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw Error(ErrorCode::kIoError, "cannot open " + path.string());
  Sha256 sha;
  std::vector<unsigned char> buffer(1 << 20);
  std::size_t got = 0;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) sha.update(buffer.data(), got);
  if (std::ferror(file.get())) throw Error(ErrorCode::kIoError, "read error in " + path.string());
  return sha.hex();
}

}  // namespace dermcds

#include "dermcds/image_set_digest.hpp"

namespace dermcds {

std::string image_set_sha256(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string listing;
  for (const auto& [name, sha256] : files) listing.append(name).append(" ").append(sha256).append("\n");
  return sha256_hex({reinterpret_cast<const std::uint8_t*>(listing.data()), listing.size()});
}

}  // namespace dermcds
