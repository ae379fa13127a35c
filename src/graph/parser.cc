// Parser of the graph text format: a small lexer and a recursive-descent parser that
// builds through GraphBuilder, so every node is type-checked as it is read. Every error
// names file:line:column and what was expected.
#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "graph/text.h"
#include "kiln/error.h"
#include "support/limits.h"

namespace kiln {

namespace {

enum class Tok { End, Ident, Value, Int, Float, String, Punct };

struct Token {
  Tok kind = Tok::End;
  std::string text;
  int line = 1, column = 1;
};

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::End:
      return "end of input";
    case Tok::String:
      return "string \"" + t.text + "\"";
    default:
      return "'" + t.text + "'";
  }
}

class Lexer {
 public:
  Lexer(std::string_view text, std::string_view file) : text_(text), file_(file) {}

  [[noreturn]] void error_at(int line, int column, const std::string& message) const {
    throw ParseError(fmt::format("{}:{}:{}: {}", file_, line, column, message));
  }

  Token next() {
    skip_space();
    Token t;
    t.line = line_;
    t.column = column_;
    if (pos_ >= text_.size()) return t;
    char c = text_[pos_];
    auto is_ident = [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.';
    };
    if (c == '%') {
      advance();
      t.kind = Tok::Value;
      while (pos_ < text_.size() && is_ident(text_[pos_])) t.text += advance();
      if (t.text.empty()) error_at(t.line, t.column, "expected a value name after '%'");
      return t;
    }
    if (c == '"') {
      advance();
      t.kind = Tok::String;
      while (true) {
        if (pos_ >= text_.size() || text_[pos_] == '\n')
          error_at(t.line, t.column, "unterminated string");
        char ch = advance();
        if (ch == '"') break;
        if (ch == '\\') {
          if (pos_ >= text_.size()) error_at(t.line, t.column, "unterminated string");
          ch = advance();
        }
        t.text += ch;
      }
      return t;
    }
    bool negative_word = c == '-' && text_.substr(pos_ + 1, 3) == "inf";
    if (std::isdigit(static_cast<unsigned char>(c)) || negative_word ||
        (c == '-' && pos_ + 1 < text_.size() &&
         (std::isdigit(static_cast<unsigned char>(text_[pos_ + 1])) || text_[pos_ + 1] == '.'))) {
      t.kind = Tok::Int;
      t.text += advance();
      if (negative_word) {
        t.text += advance();
        t.text += advance();
        t.text += advance();
        t.kind = Tok::Float;
        return t;
      }
      while (pos_ < text_.size()) {
        char ch = text_[pos_];
        if (std::isdigit(static_cast<unsigned char>(ch))) {
          t.text += advance();
        } else if (ch == '.' || ch == 'e' || ch == 'E' ||
                   ((ch == '-' || ch == '+') && (t.text.back() == 'e' || t.text.back() == 'E'))) {
          t.kind = Tok::Float;
          t.text += advance();
        } else {
          break;
        }
      }
      return t;
    }
    if (is_ident(c)) {
      t.kind = Tok::Ident;
      while (pos_ < text_.size() && is_ident(text_[pos_])) t.text += advance();
      if (t.text == "inf" || t.text == "nan") t.kind = Tok::Float;
      return t;
    }
    if (std::string_view("(){}[],:=*").find(c) != std::string_view::npos) {
      t.kind = Tok::Punct;
      t.text = advance();
      return t;
    }
    error_at(t.line, t.column, fmt::format("unexpected character '{}'", c));
  }

 private:
  char advance() {
    char c = text_[pos_++];
    if (c == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    return c;
  }
  void skip_space() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') advance();
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        advance();
      } else {
        break;
      }
    }
  }

  std::string_view text_;
  std::string_view file_;
  size_t pos_ = 0;
  int line_ = 1, column_ = 1;
};

class Parser {
 public:
  Parser(std::string_view text, std::string_view file, const std::map<std::string, Tensor>* c)
      : lexer_(text, file), constants_(c), builder_("main") {
    token_ = lexer_.next();
  }

  Graph parse() {
    expect_word("graph");
    Token name = expect(Tok::Ident, "a graph name");
    builder_ = GraphBuilder(name.text);
    expect_punct("(");
    if (!is_punct(")")) {
      do {
        Token v = expect(Tok::Value, "an input name like %x");
        define_name(v);
        if (std::isdigit(static_cast<unsigned char>(v.text[0])))
          lexer_.error_at(v.line, v.column,
                          fmt::format("input %{}: an input's name must not start with a digit "
                                      "(%0, %1, ... name nodes)",
                                      v.text));
        count(&inputs_, limits::kMaxGraphInputs, "inputs", v);
        expect_punct(":");
        TensorType type = parse_type();
        values_[v.text] = builder_.add_input(v.text, type);
      } while (accept_punct(","));
    }
    expect_punct(")");
    expect_punct("{");
    bool returned = false;
    while (!is_punct("}")) {
      if (returned) fail("expected '}' after the return statement");
      if (is_word("const")) {
        parse_constant();
      } else if (is_word("return")) {
        next();
        std::vector<ValueId> outs;
        do {
          Token out = expect(Tok::Value, "a value to return");
          if (static_cast<int64_t>(outs.size()) >= limits::kMaxGraphOutputs)
            lexer_.error_at(
                out.line, out.column,
                fmt::format("more than {} outputs; kiln's limit", limits::kMaxGraphOutputs));
          outs.push_back(use_value(out));
        } while (accept_punct(","));
        builder_.set_outputs(outs);
        returned = true;
      } else {
        parse_node();
      }
    }
    if (!returned) fail("expected a return statement before '}'");
    expect_punct("}");
    if (token_.kind != Tok::End) fail("expected end of input after the graph");
    return builder_.finish();
  }

 private:
  [[noreturn]] void fail(const std::string& message) {
    lexer_.error_at(token_.line, token_.column, message + ", found " + describe(token_));
  }
  void next() { token_ = lexer_.next(); }
  bool is_punct(const char* p) const { return token_.kind == Tok::Punct && token_.text == p; }
  bool is_word(const char* w) const { return token_.kind == Tok::Ident && token_.text == w; }
  bool accept_punct(const char* p) {
    if (!is_punct(p)) return false;
    next();
    return true;
  }
  void expect_punct(const char* p) {
    if (!accept_punct(p)) fail(fmt::format("expected '{}'", p));
  }
  void expect_word(const char* w) {
    if (!is_word(w)) fail(fmt::format("expected '{}'", w));
    next();
  }
  Token expect(Tok kind, const char* what) {
    if (token_.kind != kind) fail(fmt::format("expected {}", what));
    Token t = token_;
    next();
    return t;
  }

  // Counts one more of `what` at `at`; past `limit`, an error there stating the limit.
  void count(int64_t* n, int64_t limit, const char* what, const Token& at) {
    if (++*n > limit)
      lexer_.error_at(at.line, at.column,
                      fmt::format("more than {} {}; kiln's limit for one graph", limit, what));
  }

  void define_name(const Token& v) {
    if (values_.count(v.text))
      lexer_.error_at(v.line, v.column, fmt::format("value %{} is defined twice", v.text));
  }
  ValueId use_value(const Token& v) {
    auto it = values_.find(v.text);
    if (it == values_.end())
      lexer_.error_at(v.line, v.column, fmt::format("value %{} is not defined", v.text));
    return it->second;
  }

  int64_t parse_int(const Token& t) {
    int64_t value = 0;
    auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), value);
    if (ec != std::errc() || end != t.text.data() + t.text.size())
      lexer_.error_at(t.line, t.column, fmt::format("integer '{}' is out of range", t.text));
    return value;
  }
  double parse_float(const Token& t) {
    if (t.text == "inf") return std::numeric_limits<double>::infinity();
    if (t.text == "-inf") return -std::numeric_limits<double>::infinity();
    if (t.text == "nan") return std::numeric_limits<double>::quiet_NaN();
    double value = 0;
    auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), value);
    if (ec != std::errc() || end != t.text.data() + t.text.size())
      lexer_.error_at(t.line, t.column, fmt::format("bad number '{}'", t.text));
    return value;
  }

  Dim parse_dim() {
    auto symbol = [&](const Token& t) -> int32_t {
      int32_t s = -1;
      if (t.text.size() > 1 && t.text[0] == 's' && t.text.size() < 8) {
        auto [end, ec] = std::from_chars(t.text.data() + 1, t.text.data() + t.text.size(), s);
        if (ec == std::errc() && end == t.text.data() + t.text.size() && s >= 0) return s;
      }
      lexer_.error_at(t.line, t.column,
                      fmt::format("expected a size or a size symbol like s0, found '{}'", t.text));
    };
    if (token_.kind == Tok::Ident) return Dim::symbol(symbol(expect(Tok::Ident, "")));
    Token n = expect(Tok::Int, "a size or a size symbol like s0");
    int64_t value = parse_int(n);
    if (value < 0) lexer_.error_at(n.line, n.column, "sizes must not be negative");
    if (!accept_punct("*")) return Dim::constant(value);
    return Dim::symbol(symbol(expect(Tok::Ident, "a size symbol like s0")), value);
  }

  std::vector<Dim> parse_dim_list() {
    expect_punct("[");
    std::vector<Dim> dims;
    if (!is_punct("]")) {
      do {
        if (token_.kind == Tok::Int && token_.text[0] == '-') {
          dims.push_back(Dim::constant(parse_int(expect(Tok::Int, ""))));  // e.g. dims=[-1]
        } else {
          dims.push_back(parse_dim());
        }
      } while (accept_punct(","));
    }
    expect_punct("]");
    return dims;
  }

  TensorType parse_type() {
    Token t = expect(Tok::Ident, "a dtype (f32, f64, f16, bf16, i32, i64, bool)");
    TensorType type;
    if (!parse_dtype(t.text, &type.dtype))
      lexer_.error_at(t.line, t.column,
                      fmt::format("unknown dtype '{}' (expected f32, f64, f16, bf16, i32, i64 "
                                  "or bool)",
                                  t.text));
    type.shape = parse_dim_list();
    for (const Dim& d : type.shape)
      if (d.coeff < 0) lexer_.error_at(t.line, t.column, "sizes must not be negative");
    try {
      check_shape_limits(type.shape, "type " + type_string(type));
    } catch (const ShapeError& e) {
      lexer_.error_at(t.line, t.column, e.what());
    }
    return type;
  }

  AttrValue parse_attr_value() {
    if (is_punct("[")) return parse_dim_list();
    Token t = token_;
    next();
    switch (t.kind) {
      case Tok::Int:
        return parse_int(t);
      case Tok::Float:
        return parse_float(t);
      case Tok::String:
        return t.text;
      case Tok::Ident: {
        if (t.text == "true") return true;
        if (t.text == "false") return false;
        DType d;
        if (parse_dtype(t.text, &d)) return d;
        break;
      }
      default:
        break;
    }
    lexer_.error_at(t.line, t.column,
                    "expected an attribute value (number, true/false, string, dtype or list), "
                    "found " +
                        describe(t));
  }

  void parse_constant() {
    next();
    Token v = expect(Tok::Value, "a constant name like %w");
    define_name(v);
    expect_punct(":");
    TensorType type = parse_type();
    for (const Dim& d : type.shape)
      if (!d.is_const())
        lexer_.error_at(v.line, v.column,
                        fmt::format("constant %{}: {} has a symbolic size; a constant's shape is "
                                    "concrete (its tensor's)",
                                    v.text, type_string(type)));
    Tensor value;
    if (constants_) {
      auto it = constants_->find(v.text);
      if (it == constants_->end())
        lexer_.error_at(v.line, v.column,
                        fmt::format("constant %{} has no tensor in the constants file", v.text));
      value = it->second;
      if (value.dtype() != type.dtype || !(const_shape(value.sizes()) == type.shape))
        lexer_.error_at(
            v.line, v.column,
            fmt::format("constant %{} is declared {} but its tensor is {}{}", v.text,
                        type_string(type), dtype_name(value.dtype()), shape_string(value.sizes())));
    }
    values_[v.text] = builder_.add_constant(v.text, type, value);
  }

  void parse_node() {
    Token result = expect(Tok::Value, "a node like '%1 = op(...)', 'const', or 'return'");
    define_name(result);
    count(&nodes_, limits::kMaxNodes, "nodes", result);
    expect_punct("=");
    Token op_token = expect(Tok::Ident, "an op name");
    auto op = op_from_name(op_token.text);
    if (!op)
      lexer_.error_at(op_token.line, op_token.column,
                      fmt::format("unknown op '{}'", op_token.text));
    expect_punct("(");
    std::vector<ValueId> inputs;
    Attrs attrs;
    bool binary = is_binary(op_info(*op).rule);
    if (!is_punct(")")) {
      do {
        if (token_.kind == Tok::Value) {
          inputs.push_back(use_value(expect(Tok::Value, "")));
        } else if (token_.kind == Tok::Ident && !is_word("true") && !is_word("false")) {
          Token name = expect(Tok::Ident, "");
          expect_punct("=");
          if (attrs.has(name.text))
            lexer_.error_at(name.line, name.column,
                            fmt::format("attribute '{}' is given twice", name.text));
          attrs.set(name.text, parse_attr_value());
        } else {
          Token at = token_;
          if (!binary || attrs.has("scalar"))
            fail(fmt::format("expected a value or name=attribute in {}()", op_token.text));
          attrs.set("scalar", parse_attr_value());
          if (inputs.empty()) attrs.set("scalar_first", true);
          (void)at;
        }
      } while (accept_punct(","));
    }
    expect_punct(")");
    try {
      values_[result.text] = builder_.add_node(*op, inputs, std::move(attrs));
    } catch (const ShapeError& e) {
      lexer_.error_at(op_token.line, op_token.column, e.what());
    }
  }

  Lexer lexer_;
  const std::map<std::string, Tensor>* constants_;
  GraphBuilder builder_;
  Token token_;
  std::unordered_map<std::string, ValueId> values_;
  int64_t inputs_ = 0, nodes_ = 0;
};

}  // namespace

Graph parse_graph(std::string_view text, std::string_view filename,
                  const std::map<std::string, Tensor>* constants) {
  return Parser(text, filename, constants).parse();
}

}  // namespace kiln
