#include "util/json.h"

#include <cmath>
#include <cstdlib>

namespace dllm::json {

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.bool_ = b;
  return v;
}
Value Value::number(double d, bool integral) {
  Value v;
  v.kind_ = Kind::Number;
  v.number_ = d;
  v.integral_ = integral;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::String;
  v.string_ = std::move(s);
  return v;
}
Value Value::array(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::Array;
  v.array_ = std::make_shared<std::vector<Value>>(std::move(items));
  return v;
}
Value Value::object(std::map<std::string, Value> fields) {
  Value v;
  v.kind_ = Kind::Object;
  v.object_ = std::make_shared<std::map<std::string, Value>>(std::move(fields));
  return v;
}

static std::runtime_error kindError(const std::string& what, const char* expected) {
  return std::runtime_error(what + " must be " + expected);
}

bool Value::asBool(const std::string& what) const {
  if (kind_ != Kind::Bool) throw kindError(what, "a boolean");
  return bool_;
}
double Value::asDouble(const std::string& what) const {
  if (kind_ != Kind::Number) throw kindError(what, "a number");
  return number_;
}
int64_t Value::asInt(const std::string& what) const {
  if (kind_ != Kind::Number || std::floor(number_) != number_ || std::fabs(number_) > 9.007199254740992e15)
    throw kindError(what, "an integer");
  return static_cast<int64_t>(number_);
}
const std::string& Value::asString(const std::string& what) const {
  if (kind_ != Kind::String) throw kindError(what, "a string");
  return string_;
}
const std::vector<Value>& Value::asArray(const std::string& what) const {
  if (kind_ != Kind::Array) throw kindError(what, "an array");
  return *array_;
}
const std::map<std::string, Value>& Value::asObject(const std::string& what) const {
  if (kind_ != Kind::Object) throw kindError(what, "an object");
  return *object_;
}
const Value* Value::find(const std::string& key) const {
  if (kind_ != Kind::Object) return nullptr;
  auto it = object_->find(key);
  return it == object_->end() ? nullptr : &it->second;
}

namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Value document() {
    Value v = value(0);
    skipSpace();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error("invalid JSON at byte " + std::to_string(pos_) + ": " + why);
  }

  void skipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) pos_++;
  }

  bool consume(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Value value(int depth) {
    if (depth > 64) fail("nested too deeply");
    skipSpace();
    if (pos_ >= s_.size()) fail("unexpected end");
    char c = s_[pos_];
    if (c == '{') return objectValue(depth);
    if (c == '[') return arrayValue(depth);
    if (c == '"') return Value::string(stringValue());
    if (consume("true")) return Value::boolean(true);
    if (consume("false")) return Value::boolean(false);
    if (consume("null")) return Value();
    if (c == '-' || (c >= '0' && c <= '9')) return numberValue();
    fail(std::string("unexpected character '") + c + "'");
  }

  Value objectValue(int depth) {
    std::map<std::string, Value> fields;
    pos_++;  // {
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      pos_++;
      return Value::object(std::move(fields));
    }
    while (true) {
      skipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a key string");
      std::string key = stringValue();
      skipSpace();
      if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':'");
      pos_++;
      fields[key] = value(depth + 1);
      skipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        pos_++;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        pos_++;
        return Value::object(std::move(fields));
      }
      fail("expected ',' or '}'");
    }
  }

  Value arrayValue(int depth) {
    std::vector<Value> items;
    pos_++;  // [
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      pos_++;
      return Value::array(std::move(items));
    }
    while (true) {
      items.push_back(value(depth + 1));
      skipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        pos_++;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        pos_++;
        return Value::array(std::move(items));
      }
      fail("expected ',' or ']'");
    }
  }

  Value numberValue() {
    size_t start = pos_;
    bool integral = true;
    if (s_[pos_] == '-') pos_++;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c >= '0' && c <= '9') {
        pos_++;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        integral = false;
        pos_++;
      } else {
        break;
      }
    }
    std::string text(s_.substr(start, pos_ - start));
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) fail("bad number '" + text + "'");
    return Value::number(d, integral);
  }

  unsigned hex4() {
    if (pos_ + 4 > s_.size()) fail("short \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else fail("bad \\u escape");
    }
    return v;
  }

  static void appendUtf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string stringValue() {
    std::string out;
    pos_++;  // opening quote
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          // A surrogate stands only in a pair, high then low: alone it is no character (and no valid UTF-8).
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail("bad \\u escape: a low surrogate without a high one before it");
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (!consume("\\u")) fail("bad \\u escape: a high surrogate must be followed by a low one");
            unsigned low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("bad \\u escape: a high surrogate must be followed by a low one");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          appendUtf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }
};

}  // namespace

Value parse(std::string_view text) { return Parser(text).document(); }

}  // namespace dllm::json
