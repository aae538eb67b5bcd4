#pragma once

#include <optional>
#include <string>
#include <string_view>

// The typed values of a service's user inputs (Horizon userInput: string, int, float, boolean,
// list of strings). Values travel in their canonical text form (UserInputValue.value): the
// declared type says how to read them. One checker for the CLI (publish, register), the
// exchange and the agent, so all three agree on what a valid value is.
namespace hmq::core::wire {

// True for the types a service may declare ("bool" is Horizon's alias of "boolean").
bool known_input_type(std::string_view type);

// Why `value` is not a valid `type` value, as the end of a sentence ("must be an int for type
// 'int' (got 'x')"), or nothing when it is. "list of strings" is a JSON array of strings.
std::optional<std::string> typed_value_error(std::string_view type, std::string_view value);

}  // namespace hmq::core::wire
