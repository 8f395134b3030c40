#include "http_parsing.hpp"

#include <algorithm>
#include <cctype>

#include "dermcds/error.hpp"

namespace dermcds::service {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) { return std::tolower(x) == std::tolower(y); });
}

[[noreturn]] void malformed(const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, "malformed multipart/form-data body: " + what);
}

// One parameter value of a header such as Content-Disposition: a token, or a quoted string with
// backslash escapes (RFC 9110 5.6.4). Advances `rest` past it.
std::string parameter_value(std::string_view& rest) {
  std::string value;
  if (!rest.empty() && rest.front() == '"') {
    std::size_t i = 1;
    for (; i < rest.size() && rest[i] != '"'; ++i) {
      if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
      value += rest[i];
    }
    if (i >= rest.size()) malformed("a part header has an unterminated quoted string");
    rest.remove_prefix(i + 1);
  } else {
    const std::size_t end = std::min(rest.find(';'), rest.size());
    value = std::string(trim(rest.substr(0, end)));
    rest.remove_prefix(end);
  }
  return value;
}

// Content-Disposition: form-data; name="image"; filename="..." -> the part's name and whether
// it was sent as a file. The file name itself is never kept.
void read_disposition(std::string_view value, FormPart& part) {
  std::size_t semicolon = value.find(';');
  if (semicolon == std::string_view::npos) return;
  std::string_view rest = value.substr(semicolon);
  while (!rest.empty()) {
    if (rest.front() != ';') malformed("a Content-Disposition parameter is not separated by ';'");
    rest.remove_prefix(1);
    rest = trim(rest);
    const std::size_t equals = rest.find('=');
    if (equals == std::string_view::npos) return;  // a bare flag parameter ends the list
    const std::string_view key = trim(rest.substr(0, equals));
    rest.remove_prefix(equals + 1);
    rest = trim(rest);
    std::string parameter = parameter_value(rest);
    rest = trim(rest);
    if (iequals(key, "name"))
      part.name = std::move(parameter);
    else if (iequals(key, "filename") || iequals(key, "filename*"))
      part.is_file = true;
  }
}

void read_part_headers(std::string_view headers, FormPart& part) {
  while (!headers.empty()) {
    const std::size_t end = std::min(headers.find("\r\n"), headers.size());
    const std::string_view line = headers.substr(0, end);
    headers.remove_prefix(std::min(end + 2, headers.size()));
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) malformed("a part header line has no ':'");
    const std::string_view name = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-disposition"))
      read_disposition(value, part);
    else if (iequals(name, "content-type"))
      part.content_type = std::string(value);
  }
}

}  // namespace

std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out += static_cast<char>(high * 16 + low);
        i += 2;
        continue;
      }
    }
    out += (plus_is_space && c == '+') ? ' ' : c;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    const std::size_t end = std::min(query.find('&'), query.size());
    const std::string_view pair = query.substr(0, end);
    query.remove_prefix(std::min(end + 1, query.size()));
    if (pair.empty()) continue;
    if (out.size() >= kMaxQueryParameters)
      throw Error(ErrorCode::kInvalidArgument, "the query string has more than " + std::to_string(kMaxQueryParameters) + " parameters");
    const std::size_t equals = pair.find('=');
    if (equals == std::string_view::npos)
      out.emplace_back(percent_decode(pair, true), "");
    else
      out.emplace_back(percent_decode(pair.substr(0, equals), true), percent_decode(pair.substr(equals + 1), true));
  }
  return out;
}

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  std::size_t at = 0;
  while ((at = content_type.find(';', at)) != std::string_view::npos) {
    std::string_view rest = trim(content_type.substr(at + 1));
    ++at;
    const std::size_t equals = rest.find('=');
    if (equals == std::string_view::npos || !iequals(trim(rest.substr(0, equals)), "boundary")) continue;
    rest = trim(rest.substr(equals + 1));
    std::string boundary;
    try {
      boundary = parameter_value(rest);
    } catch (const Error&) {
      return std::nullopt;
    }
    if (boundary.empty() || boundary.size() > 70) return std::nullopt;
    return boundary;
  }
  return std::nullopt;
}

std::vector<FormPart> parse_multipart(std::string_view body, std::string_view boundary) {
  const std::string delimiter = "--" + std::string(boundary);
  const std::string next_delimiter = "\r\n" + delimiter;
  std::size_t pos = 0;
  if (body.substr(0, delimiter.size()) == delimiter) {
    pos = delimiter.size();
  } else {
    // A preamble before the first delimiter is allowed (RFC 2046 5.1.1) and ignored.
    const std::size_t first = body.find(next_delimiter);
    if (first == std::string_view::npos) malformed("no opening boundary delimiter");
    pos = first + next_delimiter.size();
  }
  std::vector<FormPart> parts;
  for (;;) {
    if (body.substr(pos, 2) == "--") return parts;                               // the closing delimiter; an epilogue may follow
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;  // transport padding
    if (body.substr(pos, 2) != "\r\n") malformed("a boundary delimiter is not followed by a line break");
    pos += 2;
    std::size_t content_start = 0;
    std::string_view headers;
    if (body.substr(pos, 2) == "\r\n") {
      content_start = pos + 2;
    } else {
      const std::size_t headers_end = body.find("\r\n\r\n", pos);
      if (headers_end == std::string_view::npos) malformed("a part's headers do not end");
      headers = body.substr(pos, headers_end - pos);
      content_start = headers_end + 4;
    }
    const std::size_t content_end = body.find(next_delimiter, content_start);
    if (content_end == std::string_view::npos) malformed("no closing boundary delimiter");
    if (parts.size() >= kMaxFormParts)
      throw Error(ErrorCode::kInvalidArgument, "the form has more than " + std::to_string(kMaxFormParts) + " parts");
    FormPart part;
    read_part_headers(headers, part);
    part.content = body.substr(content_start, content_end - content_start);
    parts.push_back(std::move(part));
    pos = content_end + next_delimiter.size();
  }
}

}  // namespace dermcds::service
