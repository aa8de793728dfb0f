// A small JSON reader for the files a checkpoint carries (config.json, safetensors headers, shard indexes).
// Tensor-free on purpose: it is shared by the loader and the tests of bad checkpoints.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dllm::json {

class Value {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Value() = default;
  static Value boolean(bool b);
  static Value number(double d, bool integral);
  static Value string(std::string s);
  static Value array(std::vector<Value> items);
  static Value object(std::map<std::string, Value> fields);

  bool isNull() const { return kind_ == Kind::Null; }
  bool isNumber() const { return kind_ == Kind::Number; }
  bool isIntegral() const { return kind_ == Kind::Number && integral_; }
  bool isString() const { return kind_ == Kind::String; }
  bool isObject() const { return kind_ == Kind::Object; }
  bool isBool() const { return kind_ == Kind::Bool; }

  // Accessors throw std::runtime_error naming `what` when the value has another kind.
  bool asBool(const std::string& what) const;
  double asDouble(const std::string& what) const;
  int64_t asInt(const std::string& what) const;
  const std::string& asString(const std::string& what) const;
  const std::vector<Value>& asArray(const std::string& what) const;
  const std::map<std::string, Value>& asObject(const std::string& what) const;

  // Object field or nullptr.
  const Value* find(const std::string& key) const;

 private:
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  bool integral_ = false;
  double number_ = 0;
  std::string string_;
  std::shared_ptr<std::vector<Value>> array_;
  std::shared_ptr<std::map<std::string, Value>> object_;
};

// Parses a complete JSON text; throws std::runtime_error with the byte offset of the first error.
Value parse(std::string_view text);

}  // namespace dllm::json
