#include <iostream>
#include <string>
#include <vector>

#include "tools/replay/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  return hmq::tools::replay::run(args, std::cout, std::cerr);
}
